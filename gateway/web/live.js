// The live page: desks and rooms, doors, offline devices and who is in today, kept current
// through server-sent events. No framework and no build step: the DOM is built with
// textContent only, so whatever a member typed in their profile is shown, never run.
"use strict";

(() => {
  const URLS = { state: "/live/state", board: "/live/board", events: "/live/events" };
  // After the browser gives up on a stream (an HTTP error, not a dropped connection), try again
  // at growing intervals; a dropped connection is retried by EventSource itself.
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 15000;

  const DOOR_STATES = {
    opened: "Open",
    closed: "Closed",
    held_open: "Held open",
    forced_open: "Forced open",
    tamper: "Tamper alarm",
  };
  const DOOR_ALARMS = new Set(["held_open", "forced_open", "tamper"]);
  const DESK_STATES = { free: "free", occupied: "occupied", unknown: "status unknown" };

  const $ = (id) => document.getElementById(id);
  const view = {
    siteName: $("site-name"),
    summary: $("summary"),
    connection: $("connection"),
    banner: $("offline-banner"),
    offline: $("offline-devices"),
    areas: $("areas"),
    doors: $("doors"),
    search: $("search"),
    count: $("board-count"),
    members: $("members"),
    updated: $("updated"),
  };

  let timeZone; // the site's, once known; the browser's until then
  let latestState = null;
  let board = [];
  let areasShape = "";
  let offlineShape = null;
  // Every snapshot received bumps its counter; a fetch started before a newer snapshot arrived
  // through the stream is dropped rather than shown over it.
  const received = { state: 0, board: 0 };

  // --- small DOM helpers ---------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function time(iso, withSeconds) {
    if (!iso) return "";
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return "";
    const options = { hour: "2-digit", minute: "2-digit" };
    if (withSeconds) options.second = "2-digit";
    try {
      return at.toLocaleTimeString([], { ...options, timeZone });
    } catch {
      return at.toLocaleTimeString([], options); // an unknown time zone name
    }
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  // --- the space: areas, desks, rooms ---------------------------------------------------------

  function deskState(desk) {
    if (desk.occupied === true) return "occupied";
    if (desk.occupied === false) return "free";
    return "unknown";
  }

  function renderState(state) {
    latestState = state;
    if (state.site && state.site.timezone) timeZone = state.site.timezone;
    const siteName = (state.site && state.site.name) || "Varco";
    setText(view.siteName, siteName);
    const title = `Live — ${siteName}`;
    if (document.title !== title) document.title = title;

    renderAreas(state.areas || []);
    renderDoors(state.doors || []);
    renderOffline(state.offline_devices || []);
    renderSummary(state);
    view.updated.dateTime = state.updated_at || "";
    setText(view.updated, time(state.updated_at, true) || "—");
  }

  function renderSummary(state) {
    const count = { desk: { all: 0, free: 0 }, room: { all: 0, free: 0 } };
    for (const area of state.areas || []) {
      for (const desk of area.desks) {
        const kind = desk.kind === "room" ? count.room : count.desk;
        kind.all += 1;
        if (deskState(desk) === "free") kind.free += 1;
      }
    }
    const parts = [];
    if (count.desk.all) parts.push(`${count.desk.free} of ${plural(count.desk.all, "desk", "desks")} free`);
    if (count.room.all) parts.push(`${count.room.free} of ${plural(count.room.all, "room", "rooms")} free`);
    if (typeof state.present === "number") parts.push(`${plural(state.present, "person", "people")} in`);
    setText(view.summary, parts.join(" · "));
  }

  function renderAreas(areas) {
    // Rebuild only when desks are added, removed or renamed; otherwise update in place, so that
    // a wall screen does not flicker and assistive technology keeps its place.
    const shape = JSON.stringify(
      areas.map((a) => [a.id, a.name, a.desks.map((d) => [d.id, d.name, d.kind])]),
    );
    if (shape !== areasShape) {
      areasShape = shape;
      view.areas.replaceChildren(...areas.map(areaSection));
      if (areas.length === 0) {
        view.areas.append(el("p", { className: "empty" }, "No desks or rooms are registered yet."));
      }
    }
    for (const area of areas) {
      const section = view.areas.querySelector(`[data-area="${CSS.escape(area.id)}"]`);
      if (!section) continue;
      for (const desk of area.desks) {
        const item = section.querySelector(`[data-desk="${CSS.escape(desk.id)}"]`);
        if (item) updateDesk(item, desk);
      }
      setText(section.querySelector(".counts"), areaCounts(area));
    }
  }

  function areaSection(area) {
    const headingId = `area-${area.id}`;
    const list = el("ul", { className: "desks", "aria-labelledby": headingId });
    for (const desk of area.desks) {
      list.append(
        el(
          "li",
          { className: `desk kind-${desk.kind === "room" ? "room" : "desk"}`, "data-desk": desk.id },
          el("span", { className: "desk-mark", "aria-hidden": "true" }),
          el("span", { className: "desk-name" }, desk.name),
          el("span", { className: "desk-state" }),
          el("span", { className: "desk-since" }),
        ),
      );
    }
    return el(
      "section",
      { className: "area", "data-area": area.id, "aria-labelledby": headingId },
      el("h3", { id: headingId }, area.name),
      el("p", { className: "counts" }),
      list,
    );
  }

  function updateDesk(item, desk) {
    const state = deskState(desk);
    const label = `${desk.name}, ${DESK_STATES[state]}`;
    if (item.dataset.state !== state) item.dataset.state = state;
    if (item.getAttribute("aria-label") !== label) item.setAttribute("aria-label", label);
    setText(item.querySelector(".desk-state"), DESK_STATES[state]);
    const since = state === "unknown" ? "" : time(desk.since);
    setText(item.querySelector(".desk-since"), since ? `since ${since}` : "");
  }

  function areaCounts(area) {
    const unknown = area.desks.length - area.free - area.occupied;
    const parts = [`${area.free} free`, `${area.occupied} occupied`];
    if (unknown > 0) parts.push(`${unknown} unknown`);
    return parts.join(" · ");
  }

  // --- doors and devices ------------------------------------------------------------------------

  function renderDoors(doors) {
    const items = doors.map((door) => {
      const state = door.state || "unknown";
      const text = DOOR_STATES[door.state] || "State unknown";
      const alarm = DOOR_ALARMS.has(door.state);
      return el(
        "li",
        {
          className: `door${alarm ? " alarm" : ""}`,
          "data-door": door.id,
          "data-state": state,
          "data-locked-down": door.locked_down ? "true" : null,
        },
        el("span", { className: "door-name" }, door.name),
        el("span", { className: "door-state" }, text),
        door.locked_down ? el("span", { className: "door-lockdown" }, "Locked down") : null,
      );
    });
    const shape = JSON.stringify(doors.map((d) => [d.id, d.name, d.state, d.locked_down]));
    if (view.doors.dataset.shape === shape) return;
    view.doors.dataset.shape = shape;
    view.doors.replaceChildren(...items);
    if (doors.length === 0) view.doors.append(el("li", { className: "empty" }, "No doors."));
  }

  function renderOffline(devices) {
    // role="alert" announces every change of its content: touch it only when the list changes.
    const shape = JSON.stringify(devices.map((d) => [d.id, d.name]));
    if (shape === offlineShape) return;
    offlineShape = shape;
    view.offline.replaceChildren(
      ...devices.map((d) => el("li", { "data-device": d.id }, d.name || d.id)),
    );
    view.banner.hidden = devices.length === 0;
  }

  // --- who's in today ---------------------------------------------------------------------------

  function renderBoard(data) {
    board = Array.isArray(data.members) ? data.members : [];
    renderMembers();
  }

  function matches(member, query) {
    if (!query) return true;
    const haystack = [member.profession || "", member.ask_me_about || "", ...(member.skills || [])];
    return haystack.some((text) => text.toLowerCase().includes(query));
  }

  let shownShape = "";

  function renderMembers() {
    const query = view.search.value.trim().toLowerCase();
    const shown = board.filter((m) => matches(m, query));
    // Rebuild only when what is shown changes: a keyboard user keeps focus on a skill button.
    const shape = JSON.stringify([shown, timeZone]);
    if (shape !== shownShape) {
      shownShape = shape;
      view.members.replaceChildren(...shown.map(memberCard));
    }
    let count;
    if (board.length === 0) count = "Nobody who shares a profile is in yet today.";
    else if (!query) count = `${plural(board.length, "member", "members")} in today.`;
    else if (shown.length === 0) count = `Nobody in today matches “${view.search.value.trim()}”.`;
    else count = `${shown.length} of ${plural(board.length, "member", "members")} match.`;
    setText(view.count, count);
  }

  function memberCard(member) {
    const skills = (member.skills || []).map((skill) =>
      el(
        "li",
        {},
        el("button", { type: "button", className: "skill", "data-skill": skill }, skill),
      ),
    );
    const since = time(member.since);
    return el(
      "li",
      { className: "member", "data-member": member.display_name },
      el("h3", { className: "member-name" }, member.display_name),
      member.profession ? el("p", { className: "profession" }, member.profession) : null,
      skills.length ? el("ul", { className: "skills", "aria-label": "Skills" }, ...skills) : null,
      member.ask_me_about
        ? el("p", { className: "ask" }, el("span", { className: "ask-label" }, "Ask me about: "), member.ask_me_about)
        : null,
      since ? el("p", { className: "since" }, `In since ${since}`) : null,
    );
  }

  view.search.addEventListener("input", renderMembers);
  view.members.addEventListener("click", (event) => {
    const button = event.target.closest("button.skill");
    if (!button) return;
    view.search.value = button.dataset.skill;
    renderMembers();
    view.search.focus();
  });
  view.search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.search.value) {
      view.search.value = "";
      renderMembers();
    }
  });

  // --- the connection -----------------------------------------------------------------------------

  const CONNECTION_TEXT = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
  };

  function setConnection(state) {
    view.connection.dataset.state = state;
    let text = CONNECTION_TEXT[state];
    if (state === "reconnecting" && latestState && latestState.updated_at) {
      text = `Reconnecting… (showing ${time(latestState.updated_at)})`;
    }
    setText(view.connection, text);
    document.body.classList.toggle("stale", state === "reconnecting");
  }

  function accept(kind, text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return; // a garbled event: the next snapshot is complete anyway
    }
    received[kind] += 1;
    if (kind === "state") renderState(data);
    else renderBoard(data);
  }

  async function fetchSnapshot(kind) {
    const before = received[kind];
    try {
      const response = await fetch(URLS[kind], { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const text = await response.text();
      if (received[kind] === before) accept(kind, text);
    } catch {
      // Offline: the stream's reconnection shows it, and refreshes when it is back.
    }
  }

  function refresh() {
    fetchSnapshot("state");
    fetchSnapshot("board");
  }

  let source = null;
  let lostConnection = false;
  let retryMs = RETRY_MIN_MS;
  let retryTimer = null;

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    source = new EventSource(URLS.events);
    source.addEventListener("open", () => {
      retryMs = RETRY_MIN_MS;
      setConnection("live");
      if (lostConnection) {
        lostConnection = false;
        refresh();
      }
    });
    source.addEventListener("state", (event) => accept("state", event.data));
    source.addEventListener("board", (event) => accept("board", event.data));
    source.addEventListener("error", () => {
      lostConnection = true;
      setConnection("reconnecting");
      if (source.readyState === EventSource.CLOSED) scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (retryTimer !== null) return;
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }

  function reconnectNowIfDown() {
    if (!source || source.readyState !== EventSource.OPEN) connect();
  }

  // A phone waking up, or the network coming back: do not wait for the next retry.
  window.addEventListener("online", reconnectNowIfDown);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNowIfDown();
  });

  refresh();
  connect();
})();
