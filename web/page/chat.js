// The chat page: one WebSocket to "ws" beside this page, carrying the
// room's protocol lines. Every line from the room is put on the page as
// text (textContent), never as HTML.
"use strict";

const messages = document.getElementById("messages");
const form = document.getElementById("say");
const input = document.getElementById("line");
const status = document.getElementById("status");

const maxLines = 2000;           // lines kept on the page
const sent = [];                 // what the user typed, for up and down
let recall = 0;                  // where up and down are in sent
let socket = null;
let pending = "";                // the part of a line not yet ended by "\n"
let backoff = 500;               // ms before the next reconnection attempt

function setStatus(up, text) {
  status.textContent = text;
  status.className = up ? "up" : "down";
}

// kind says how a line from the room is styled: the server's own lines,
// errors, joins and leaves, /me lines, whispers, and chat.
function kind(line) {
  if (line.startsWith("* error:")) return "error";
  if (line.startsWith("* ")) return "notice";
  const rest = line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, "");
  if (rest.startsWith("* ")) {
    return / (joined|is now \S+|left( \(.*\))?)$/.test(rest) ? "notice" : "action";
  }
  if (/^\S+ whispers: /.test(rest)) return "whisper";
  return "chat";
}

function show(line, cls) {
  // Keep scrolling only if the user has not scrolled up.
  const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  const div = document.createElement("div");
  div.className = cls || kind(line);
  div.textContent = line;
  messages.appendChild(div);
  while (messages.childElementCount > maxLines) messages.firstElementChild.remove();
  if (atBottom) messages.scrollTop = messages.scrollHeight;
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  setStatus(false, "connecting");
  socket = new WebSocket(url);
  socket.onopen = () => {
    backoff = 500;
    setStatus(true, "connected");
  };
  socket.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    const lines = (pending + ev.data).split("\n");
    pending = lines.pop();
    for (const line of lines) show(line);
  };
  socket.onclose = () => {
    pending = "";
    socket = null;
    setStatus(false, "disconnected; reconnecting in " + Math.round(backoff / 1000) + " s");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  };
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const line = input.value;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    show("* not connected: your line was not sent", "error");
    return;
  }
  socket.send(line.replace(/\r?\n/g, " ") + "\n");
  if (line !== "" && sent[sent.length - 1] !== line) sent.push(line);
  recall = sent.length;
  input.value = "";
});

input.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowUp" && recall > 0) {
    recall--;
  } else if (ev.key === "ArrowDown" && recall < sent.length) {
    recall++;
  } else {
    return;
  }
  ev.preventDefault();
  input.value = recall < sent.length ? sent[recall] : "";
});

connect();
