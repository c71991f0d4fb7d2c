// soranb's synced compare: one play/pause button and one seek bar drive every <video> of the view.
// Text reaches the page as textContent only; sources are the URLs the Python side checked.

const DRIFT_S = 0.2; // a follower further than this from the leader is put back in step

function clock(seconds) {
  const s = Number.isFinite(seconds) ? Math.max(0, seconds) : 0;
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const root = make("div", "soranb-compare-players");
  const row = make("div", "soranb-compare-row");
  const controls = make("div", "soranb-compare-controls");
  const toggle = make("button", "soranb-compare-toggle", "Play");
  const seek = make("input", "soranb-compare-seek");
  const time = make("span", "soranb-compare-time", clock(0));
  seek.type = "range";
  seek.min = "0";
  seek.step = "0.01";
  seek.value = "0";
  seek.setAttribute("aria-label", "Seek all videos");
  controls.append(toggle, seek, time);
  root.append(row, controls);
  el.append(root);

  let videos = [];
  const longest = () => Math.max(0, ...videos.map((v) => (Number.isFinite(v.duration) ? v.duration : 0)));
  const leader = () => videos.reduce((a, b) => ((b.duration || 0) > (a.duration || 0) ? b : a), videos[0]);
  const playing = () => videos.some((v) => !v.paused && !v.ended);

  function showState() {
    toggle.textContent = playing() ? "Pause" : "Play";
    const lead = leader();
    const t = lead ? lead.currentTime : 0;
    seek.max = String(longest() || 1);
    if (document.activeElement !== seek) seek.value = String(t);
    time.textContent = `${clock(t)} / ${clock(longest())}`;
  }

  function seekAll(t) {
    for (const v of videos) v.currentTime = Math.min(t, Number.isFinite(v.duration) ? v.duration : t);
    showState();
  }

  function playAll() {
    const lead = leader();
    if (lead && lead.ended) seekAll(0); // play after the end starts every video again, together
    for (const v of videos) v.play().catch(() => null);
  }

  function pauseAll() {
    for (const v of videos) v.pause();
    const lead = leader();
    if (lead) seekAll(lead.currentTime); // paused on the same frame
  }

  function keepInStep() {
    const lead = leader();
    if (!lead || lead.paused) return showState();
    for (const v of videos) {
      if (v === lead || !Number.isFinite(v.duration) || lead.currentTime > v.duration) continue;
      if (Math.abs(v.currentTime - lead.currentTime) > DRIFT_S) v.currentTime = lead.currentTime;
    }
    showState();
  }

  function build() {
    for (const v of videos) v.pause();
    row.replaceChildren();
    videos = [];
    for (const item of model.get("videos")) {
      const figure = make("figure", "soranb-compare-item");
      const video = make("video", "soranb-compare-video");
      video.muted = true; // several sounds at once help no one; a person can unmute one
      video.playsInline = true;
      video.preload = "auto";
      video.src = item.src;
      if (item.poster) video.poster = item.poster;
      for (const kind of ["play", "pause", "ended", "loadedmetadata", "seeked"]) {
        video.addEventListener(kind, showState);
      }
      video.addEventListener("timeupdate", keepInStep);
      figure.append(video, make("figcaption", "soranb-compare-label", item.label || ""));
      row.append(figure);
      videos.push(video);
    }
    showState();
  }

  toggle.addEventListener("click", () => (playing() ? pauseAll() : playAll()));
  seek.addEventListener("input", () => seekAll(Number(seek.value)));
  model.on("change:videos", build);
  build();
  return () => {
    model.off("change:videos", build);
    for (const v of videos) v.pause();
  };
}

export default { render };
