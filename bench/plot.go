package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// serverColors keeps each server's colour the same in both panels.
var serverColors = map[string]color.Color{
	"room":  color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"redis": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"nats":  color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// plotRamp draws deliveries/s and server CPU per delivery against client
// count, one line per server, side by side, to the PNG file path.
func plotRamp(path string, rs []result) error {
	throughput := plot.New()
	throughput.Title.Text = "Fan-out throughput"
	throughput.X.Label.Text = "clients in the room"
	throughput.Y.Label.Text = "deliveries per second (millions)"
	cpu := plot.New()
	cpu.Title.Text = "Server CPU per delivery (lower is better)"
	cpu.X.Label.Text = "clients in the room"
	cpu.Y.Label.Text = "µs of server CPU per delivery"
	for _, p := range []*plot.Plot{throughput, cpu} {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		p.Legend.Left = true // the lines end high on the right: the room's throughput, NATS's CPU
		p.Add(plotter.NewGrid())
	}
	var servers []string
	for _, r := range rs {
		if !slices.Contains(servers, r.server) {
			servers = append(servers, r.server)
		}
	}
	for _, s := range servers {
		var tp, cp plotter.XYs
		for _, r := range rs {
			if r.server == s {
				tp = append(tp, plotter.XY{X: float64(r.clients), Y: r.throughput / 1e6})
				cp = append(cp, plotter.XY{X: float64(r.clients), Y: float64(r.cpuPerDelivery()) / 1e3})
			}
		}
		for _, panel := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{throughput, tp}, {cpu, cp}} {
			line, points, err := plotter.NewLinePoints(panel.xys)
			if err != nil {
				return fmt.Errorf("plotting %s: %w", s, err)
			}
			line.Color, points.Color = serverColors[s], serverColors[s]
			line.Width = vg.Points(2)
			panel.p.Add(line, points)
			panel.p.Legend.Add(s, line, points)
		}
	}

	const width, height = 12 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{throughput, cpu}}, tiles, dc)
	throughput.Draw(canvases[0][0])
	cpu.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
