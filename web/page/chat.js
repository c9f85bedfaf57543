// The chat page, on the JSON protocol (chatroom.v1.json, docs/protocol.md):
// one WebSocket to "ws" beside this page. Rooms on the left (join, leave,
// switch, unread counts), the current room's lines in the middle, its
// members on the right. Everything from the server is put on the page as
// text (textContent), never as HTML.
//
// The name is asked once and kept in localStorage; every connection asks
// for it again (a reconnect lands under it, not as a bare address). A
// reconnect asks, per room, for the lines after the last one seen, and
// shows them once each, or a note that more was missed than the room
// keeps.
"use strict";

const $ = (id) => document.getElementById(id);
const messages = $("messages");
const input = $("line");
const status = $("status");

const maxLines = 2000;     // lines kept per room
const nickPattern = /^[A-Za-z0-9_\-.[\]]{1,32}$/;
const store = {
  get(key) { try { return localStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
};

let wanted = store.get("chatroom.name") || ""; // the name the user chose
let me = "";                                   // the name the server gave
const rooms = new Map();                       // room key → room (see newRoom)
let current = null;                            // the room shown
let socket = null;
let connected = false;                         // the socket is open
let everConnected = false;
let backoff = 500;                             // ms before the next attempt
let reclaim = false;                           // the server gave another name than the wanted one: ask again
let nickTries = 0;                             // attempts to take the wanted name back
let nickTimer = 0;
const sent = [];                               // what the user typed, for up and down
let recall = 0;
let switchTo = "";                             // a room the user asked to join: shown once in

const key = (name) => name.replace(/^#/, "").toLowerCase();
const same = (a, b) => a.toLowerCase() === b.toLowerCase();

function newRoom(name) {
  return {
    name,
    nodes: [],            // its lines, as elements
    members: new Map(),   // name key → {name, op, voice}
    count: 0,
    unread: 0,
    topic: "",
    last: 0,              // the ID of the last line shown; where a recovery starts
    pending: null,        // the room's last line when it was entered, until "synced"
  };
}

// ---- showing lines ---------------------------------------------------

const timeFormat = { hour: "2-digit", minute: "2-digit" };

// The lines' times are as wide as the locale writes the widest (the font
// is monospaced): the wrapped part of a line starts past them.
messages.style.setProperty("--time", Math.max(
  new Date(2000, 0, 1, 10, 59).toLocaleTimeString([], timeFormat).length,
  new Date(2000, 0, 1, 22, 59).toLocaleTimeString([], timeFormat).length) + "ch");

function localTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  return {
    short: d.toLocaleTimeString([], timeFormat),
    full: d.toLocaleString(),
    iso: d.toISOString(),
  };
}

// line builds a line: its time, then parts ([text, class] or text).
function line(cls, iso, ...parts) {
  const div = document.createElement("div");
  div.className = "line " + cls;
  const t = localTime(iso);
  const time = document.createElement("time");
  time.dateTime = t.iso;
  time.title = t.full;
  time.textContent = t.short;
  div.append(time, " ");
  for (const p of parts) {
    if (typeof p === "string") {
      div.append(p);
    } else {
      const span = document.createElement("span");
      span.className = p[1];
      span.textContent = p[0];
      div.append(span);
    }
  }
  return div;
}

// add puts a line in room (the current room if null), counting it unread
// if the room is not shown and it counts.
function add(room, div, counts) {
  room = room || current;
  if (!room) return;
  room.nodes.push(div);
  if (room.nodes.length > maxLines) room.nodes.shift().remove();
  if (room === current) {
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.appendChild(div);
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  } else if (counts) {
    room.unread++;
    renderRooms();
  }
}

function notice(room, iso, text, cls) {
  add(room, line(cls || "notice", iso, ["— " + text, "text"]), false);
}

// local shows a line of the page's own (help, errors) in the current room,
// or in the message area if there is none yet.
function local(text, cls) {
  const div = line(cls || "notice", null, ["— " + text, "text"]);
  if (current) add(current, div, false);
  else messages.appendChild(div);
}

// ---- rooms and members ---------------------------------------------

function show(room) {
  current = room;
  if (room) {
    room.unread = 0;
    messages.replaceChildren(...room.nodes);
    messages.scrollTop = messages.scrollHeight;
  }
  document.body.classList.remove("show-rooms");
  renderHeader();
  renderRooms();
  renderMembers();
}

function renderHeader() {
  $("room-name").textContent = current ? current.name : "chatroom";
  $("topic").textContent = current && current.topic ? current.topic : "";
  $("me").textContent = me;
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of rooms.values()) {
    const li = document.createElement("li");
    if (room === current) li.className = "current";
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "room";
    pick.textContent = room.name;
    pick.addEventListener("click", () => show(room));
    li.append(pick);
    if (room.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.textContent = room.unread > 999 ? "999+" : String(room.unread);
      badge.title = room.unread + " unread";
      li.append(badge);
    }
    const leave = document.createElement("button");
    leave.type = "button";
    leave.className = "leave small";
    leave.textContent = "×";
    leave.title = "leave " + room.name;
    leave.setAttribute("aria-label", "leave " + room.name);
    leave.addEventListener("click", () => send({ type: "part", room: room.name }));
    li.append(leave);
    list.append(li);
  }
  store.set("chatroom.rooms", JSON.stringify([...rooms.values()].map((r) => r.name)));
}

function renderMembers() {
  const list = $("members");
  list.replaceChildren();
  if (!current) {
    $("member-count").textContent = "";
    return;
  }
  const all = [...current.members.values()].sort((a, b) =>
    a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0);
  for (const m of all) {
    const li = document.createElement("li");
    li.textContent = (m.op ? "@" : m.voice ? "+" : "") + m.name;
    if (same(m.name, me)) {
      li.className = "self";
      li.title = "you";
    }
    list.append(li);
  }
  $("member-count").textContent = "(" + Math.max(all.length, current.count) + ")";
}

function addMember(room, name) {
  room.members.set(key(name), { name, op: false, voice: false });
  room.count = room.members.size;
  if (room === current) renderMembers();
}

function removeMember(room, name) {
  room.members.delete(key(name));
  room.count = room.members.size;
  if (room === current) renderMembers();
}

function leaveRoom(room) {
  rooms.delete(key(room.name));
  if (current === room) show(rooms.values().next().value || null);
  else renderRooms();
}

function roomOf(name) {
  return name ? rooms.get(key(name)) : null;
}

// ---- messages from the server ---------------------------------------

const handlers = {
  welcome(m) {
    me = m.name;
    renderHeader();
    reclaim = !!wanted && !same(me, wanted);
    if (reclaim) retryNick();
  },
  join(m) {
    let room = roomOf(m.room);
    if (m.own) {
      if (!room) {
        room = newRoom(m.room);
        rooms.set(key(m.room), room);
      }
      room.name = m.room;
      room.pending = m.last || 0;
      room.topic = m.topic || "";
      room.count = m.count || 0;
      if (!current || switchTo === key(m.room)) {
        switchTo = "";
        show(room);
        notice(room, m.time, "you are in " + room.name + (room.topic ? ": " + room.topic : ""));
      } else {
        renderRooms();
      }
      return;
    }
    if (!room) return;
    addMember(room, m.from);
    notice(room, m.time, m.from + " joined");
  },
  members(m) {
    const room = roomOf(m.room);
    if (!room) {
      local(m.count + " in " + m.room + ": " + m.members.map((x) => x.name).join(", "));
      return;
    }
    room.members = new Map(m.members.map((x) => [key(x.name), { name: x.name, op: !!x.op, voice: !!x.voice }]));
    room.count = m.count;
    if (room === current) renderMembers();
  },
  say(m) { said(m, false); },
  me(m) { said(m, true); },
  whisper(m) {
    const div = m.own
      ? line("whisper own", m.time, ["you", "from"], " → ", [m.to, "to"], ": ", [m.text, "text"])
      : line("whisper", m.time, [m.from, "from"], " → you: ", [m.text, "text"]);
    add(current, div, false);
  },
  leave(m) {
    const mine = m.own || same(m.from, me);
    const names = m.room ? [m.room] : m.rooms || [];
    for (const name of names) {
      const room = roomOf(name);
      if (!room) continue;
      if (mine && m.room) {
        const why = m.reason === "kicked" ? "put out of " + room.name + " by " + m.by + (m.text ? ": " + m.text : "") : "left " + room.name;
        leaveRoom(room);
        local("you " + why);
        send({ type: "rooms" });
        continue;
      }
      removeMember(room, m.from);
      let why = "";
      if (m.reason === "kicked") why = " (kicked" + (m.by ? " by " + m.by : "") + (m.text ? ": " + m.text : "") + ")";
      else if (m.quit && m.reason !== "exit") why = " (" + m.reason + ")";
      else if (m.text) why = " (" + m.text + ")";
      notice(room, m.time, m.from + " left" + why);
    }
  },
  nick(m) {
    if (m.own) {
      me = m.from;
      wanted = m.from;
      store.set("chatroom.name", wanted);
      reclaim = false;
      renderHeader();
    }
    for (const name of m.rooms || []) {
      const room = roomOf(name);
      if (!room) continue;
      const old = room.members.get(key(m.old));
      room.members.delete(key(m.old));
      room.members.set(key(m.from), { name: m.from, op: old ? old.op : false, voice: old ? old.voice : false });
      if (room === current) renderMembers();
      notice(room, m.time, m.own ? "you are now " + m.from : m.old + " is now " + m.from);
    }
  },
  topic(m) {
    const room = roomOf(m.room);
    if (!room) return;
    room.topic = m.text;
    if (room === current) renderHeader();
    notice(room, m.time, m.text ? m.by + " set the topic: " + m.text : m.by + " cleared the topic");
  },
  mode(m) {
    const room = roomOf(m.room);
    if (!room) return;
    const member = m.name && room.members.get(key(m.name));
    if (member && m.mode.length === 2) {
      if (m.mode[1] === "o") member.op = m.mode[0] === "+";
      if (m.mode[1] === "v") member.voice = m.mode[0] === "+";
      if (room === current) renderMembers();
    }
    notice(room, m.time, m.by + " sets mode " + m.mode + (m.name ? " " + m.name : ""));
  },
  notice(m) {
    const targets = m.room ? [roomOf(m.room)] : [...rooms.values()];
    for (const room of targets) if (room) notice(room, m.time, m.text, "announce");
  },
  summary(m) {
    const room = roomOf(m.room);
    if (!room) return;
    notice(room, m.time, m.joined + " joined, " + m.left + " left");
    send({ type: "who", room: room.name }); // the members changed past counting
  },
  gap(m) {
    const room = roomOf(m.room);
    if (!room) return;
    room.last = 0; // the lines that follow may be numbered anew
    notice(room, m.time, "more was said while you were away than this room keeps; its last lines follow", "gap");
  },
  synced() {
    for (const room of rooms.values()) {
      if (room.pending !== null) room.last = Math.max(room.last, room.pending);
      room.pending = null;
    }
    send({ type: "rooms" }); // the open rooms changed with the joins
  },
  rooms(m) {
    const list = $("open-rooms");
    list.replaceChildren();
    for (const r of m.list || []) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "room";
      b.textContent = r.name + " (" + r.count + ")";
      if (r.topic) b.title = r.topic;
      b.addEventListener("click", () => join(r.name));
      li.append(b);
      list.append(li);
    }
  },
  error(m) {
    if (m.command === "nick" && m.text === "nickname taken" && reclaim) {
      retryNick();
      if (nickTries > 1) return; // said once is enough
    }
    add(roomOf(m.room) || current, line("error", m.time, ["error: " + m.text, "text"]), false);
  },
  bye(m) {
    local("disconnected: " + m.reason + (m.text ? ": " + m.text : ""), "error");
  },
};

// said shows a say or /me line in its room, once: a line the page has
// shown already (numbered no later than the last) is dropped.
function said(m, action) {
  const room = roomOf(m.room);
  if (!room || m.id <= room.last) return;
  room.last = m.id;
  const own = m.own || same(m.from, me);
  const cls = (action ? "action" : "say") + (own ? " own" : "");
  const div = action
    ? line(cls, m.time, "* ", [m.from, "from"], " ", [m.text, "text"])
    : line(cls, m.time, [m.from, "from"], ": ", [m.text, "text"]);
  add(room, div, true);
}

// retryNick asks again for the wanted name, a few times, further apart:
// the name may still be held by this browser's last connection.
function retryNick() {
  if (nickTimer || nickTries >= 6) return;
  const delay = 1000 * 2 ** nickTries++;
  nickTimer = setTimeout(() => {
    nickTimer = 0;
    if (reclaim) send({ type: "nick", name: wanted });
  }, delay);
}

// ---- the connection --------------------------------------------------

function setStatus(up, text) {
  status.textContent = text;
  status.className = up ? "up" : "down";
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (wanted) url.searchParams.set("name", wanted);
  if (rooms.size > 0) {
    for (const room of rooms.values()) {
      url.searchParams.append("room", room.last ? room.name + ":" + room.last : room.name);
      room.pending = null;
    }
  } else {
    let kept = [];
    try { kept = JSON.parse(store.get("chatroom.rooms") || "[]"); } catch { kept = []; }
    for (const name of Array.isArray(kept) ? kept.slice(0, 20) : []) {
      if (typeof name === "string") url.searchParams.append("room", name);
    }
  }
  setStatus(false, "connecting");
  socket = new WebSocket(url, "chatroom.v1.json");
  socket.onopen = () => {
    backoff = 500;
    connected = true;
    if (everConnected) for (const room of rooms.values()) notice(room, null, "reconnected");
    everConnected = true;
    setStatus(true, "connected");
  };
  socket.onmessage = (ev) => {
    if (typeof ev.data !== "string") return;
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    const handle = m && handlers[m.type];
    if (handle) handle(m);
  };
  socket.onclose = () => {
    socket = null;
    connected = false;
    clearTimeout(nickTimer);
    nickTimer = 0;
    nickTries = 0;
    setStatus(false, "disconnected; reconnecting in " + Math.round(backoff / 1000) + " s");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  };
}

function send(cmd) {
  if (!socket || !connected) {
    local("not connected: not sent", "error");
    return false;
  }
  socket.send(JSON.stringify(cmd));
  return true;
}

function join(name) {
  name = name.trim().replace(/^#/, "");
  if (!name) return;
  const room = roomOf(name);
  if (room) {
    show(room);
    return;
  }
  switchTo = key(name);
  send({ type: "join", room: name });
}

// ---- what the user types ----------------------------------------------

const help = [
  "commands:",
  "/me TEXT — say what you do",
  "/msg NAME TEXT — whisper to NAME alone",
  "/nick NAME — take another name",
  "/join ROOM — join ROOM (or switch to it)",
  "/part [ROOM] — leave this room, or ROOM",
  "/topic TEXT — set this room's topic",
  "/who — who is in this room",
  "/rooms — list the open rooms",
  "//text — say a line that starts with /",
];

function typed(text) {
  if (text.trim() === "") return;
  if (!text.startsWith("/") || text.startsWith("//")) {
    if (!current) { local("join a room first", "error"); return; }
    send({ type: "say", room: current.name, text: text.startsWith("//") ? text.slice(1) : text });
    return;
  }
  const [word, ...rest] = text.slice(1).split(" ");
  const args = rest.join(" ").trim();
  const room = current ? current.name : "";
  switch (word.toLowerCase()) {
    case "me":
      send({ type: "me", room, text: args });
      break;
    case "msg": {
      const [to, ...words] = args.split(" ");
      send({ type: "msg", to, text: words.join(" ") });
      break;
    }
    case "nick":
      if (!nickPattern.test(args)) { local("error: invalid nickname", "error"); break; }
      reclaim = false; // the user chose: this one is kept once the server agrees
      send({ type: "nick", name: args });
      break;
    case "join":
      join(args);
      break;
    case "part":
    case "leave":
      send({ type: "part", room: args || room });
      break;
    case "topic":
      send({ type: "topic", room, text: args });
      break;
    case "who":
      send({ type: "who", room: args || room });
      break;
    case "rooms":
      send({ type: "rooms" });
      document.body.classList.add("show-rooms");
      break;
    case "help":
      for (const h of help) local(h);
      break;
    case "quit":
      local("close the page to leave", "notice");
      break;
    default:
      local("error: unknown command /" + word + " (try /help)", "error");
  }
}

$("say").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = input.value.replace(/\r?\n/g, " ");
  if (text !== "" && sent[sent.length - 1] !== text) sent.push(text);
  recall = sent.length;
  input.value = "";
  typed(text);
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

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  join($("join-room").value);
  $("join-room").value = "";
});

$("refresh-rooms").addEventListener("click", () => send({ type: "rooms" }));

for (const [button, cls] of [["show-rooms", "show-rooms"], ["show-members", "show-members"]]) {
  $(button).addEventListener("click", () => {
    const on = !document.body.classList.contains(cls);
    document.body.classList.remove("show-rooms", "show-members");
    if (on) document.body.classList.add(cls);
    $("show-rooms").setAttribute("aria-expanded", String(document.body.classList.contains("show-rooms")));
    $("show-members").setAttribute("aria-expanded", String(document.body.classList.contains("show-members")));
  });
}

// ---- the name, asked once ----------------------------------------------

function start() {
  if (wanted && nickPattern.test(wanted)) {
    connect();
    return;
  }
  const screen = $("name-screen");
  screen.hidden = false;
  $("name").focus();
  $("name-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    if (!nickPattern.test(name)) {
      $("name-error").textContent = "1 to 32 letters, digits and _-.[] please";
      $("name-error").hidden = false;
      return;
    }
    wanted = name;
    store.set("chatroom.name", wanted);
    screen.hidden = true;
    input.focus();
    connect();
  });
}

start();
