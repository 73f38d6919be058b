// facetalk live page: pick a photo, stream a voice, show the talking face that comes back.
// WebRTC by default (facetalk/stream/webrtc.py): the voice goes up as the connection's audio track,
// the face (VP8) and the same sound come back as one stream the browser plays in sync, and controls
// travel on a data channel as JSON. ?transport=ws uses the WebSocket instead (protocol.py): binary
// out = 16 kHz mono int16 PCM; text out = {"controls"} or {"end": true}; binary in = uint32 index +
// float64 time (LE) + JPEG, drawn on a canvas. Both send text in: start, controls, degraded (the
// server sheds load: fewer or smaller frames), error and end messages.

const RATE = 16000;
const CHUNK = 320; // samples per message: 20 ms
const PLAY_DELAY_S = 0.2; // an audio file plays this much after it is sent, so its frames are on time
const HEADER_BYTES = 12;
const CONTROL_THROTTLE_MS = 100;
const TRANSPORT = new URLSearchParams(location.search).get("transport") === "ws" ? "ws" : "webrtc";
const GATHER_TIMEOUT_MS = 5000; // ICE candidates gathered before the offer goes (aiortc takes no trickle)
const END_PLAYOUT_MS = 600; // after the end message, the last frames still play this long

const $ = (id) => document.getElementById(id);
const view = $("view");
const remote = $("remote");
const painter = view.getContext("2d");
let avatar = null; // {id, preview, ...} from POST /avatars
let live = null; // the running stream, see openLive()

// -- messages and state ------------------------------------------------------------------------

function say(text, kind = "") {
  const el = $("message");
  el.textContent = text;
  el.className = `message ${kind}`;
}

function setBusy(streaming) {
  $("mic").disabled = streaming || !avatar || !window.isSecureContext || !navigator.mediaDevices;
  $("audio-file").disabled = streaming || !avatar;
  $("audio-label").setAttribute("aria-disabled", String(streaming || !avatar));
  $("stop").disabled = !streaming;
  $("use-default").disabled = streaming;
  $("photo-file").disabled = streaming;
  $("photo-label").setAttribute("aria-disabled", String(streaming));
  $("live-badge").hidden = !streaming;
}

async function readError(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

// -- photo ---------------------------------------------------------------------------------------

async function chooseAvatar(form, label) {
  $("state").textContent = "analysing";
  say(`Analysing ${label}…`);
  $("download").hidden = true;
  const started = performance.now();
  let response;
  try {
    response = await fetch("/avatars", { method: "POST", body: form });
  } catch (err) {
    $("state").textContent = avatar ? "ready" : "no photo";
    say(`Cannot reach the server: ${err.message}`, "error");
    return;
  }
  if (!response.ok) {
    $("state").textContent = avatar ? "ready" : "no photo";
    say(await readError(response), "error");
    return;
  }
  avatar = await response.json();
  const ms = Math.round(performance.now() - started);
  const image = new Image();
  image.onload = () => {
    painter.drawImage(image, 0, 0, view.width, view.height);
    $("placeholder").hidden = true;
  };
  image.src = avatar.preview;
  $("thumb").src = avatar.preview;
  $("thumb").hidden = false;
  $("state").textContent = "ready";
  const notes = avatar.notes.length ? ` Note: ${avatar.notes.join("; ")}.` : "";
  say(`Photo ready (analysed in ${ms} ms). Now talk, or stream an audio file.${notes}`, "ok");
  setBusy(false);
}

$("photo-file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const form = new FormData();
  form.append("photo", file);
  chooseAvatar(form, file.name);
});

$("use-default").addEventListener("click", () => {
  const form = new FormData();
  form.append("default", "true");
  chooseAvatar(form, "the built-in portrait");
});

// -- controls ------------------------------------------------------------------------------------

const sliders = {
  "gaze-yaw": (v) => `${v}°`,
  "gaze-pitch": (v) => `${v}°`,
  distance: (v) => `${Number(v).toFixed(2)}×`,
  motion: (v) => Number(v).toFixed(1),
  "emotion-intensity": (v) => Number(v).toFixed(1),
};

function currentControls() {
  const emotion = $("emotion").value;
  const intensity = Number($("emotion-intensity").value);
  return {
    gaze: [Number($("gaze-yaw").value), Number($("gaze-pitch").value)],
    distance: Number($("distance").value),
    motion_intensity: Number($("motion").value),
    emotion: emotion === "neutral" || intensity === 1 ? emotion : `${emotion}:${intensity}`,
    blink: $("blink").checked,
    pose_lock: $("pose-lock").checked,
  };
}

function showControls() {
  for (const [id, format] of Object.entries(sliders)) $(`${id}-out`).textContent = format($(id).value);
  $("emotion-intensity").disabled = $("emotion").value === "neutral";
}

let controlTimer = null;
function controlsChanged() {
  showControls();
  if (!live || !live.started || controlTimer) return;
  controlTimer = setTimeout(() => {
    controlTimer = null;
    if (live && live.started) sendText(live, { controls: currentControls() });
  }, CONTROL_THROTTLE_MS);
}

for (const id of [...Object.keys(sliders), "emotion", "blink", "pose-lock"]) {
  $(id).addEventListener("input", controlsChanged);
}
$("reset").addEventListener("click", () => {
  const defaults = { "gaze-yaw": 0, "gaze-pitch": 0, distance: 1, motion: 1, "emotion-intensity": 1 };
  for (const [id, value] of Object.entries(defaults)) $(id).value = value;
  $("emotion").value = "neutral";
  $("blink").checked = true;
  $("pose-lock").checked = false;
  controlsChanged();
});

// -- the live stream -----------------------------------------------------------------------------

function openLive(mode, audio) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/avatars/${encodeURIComponent(avatar.id)}/live`);
  ws.binaryType = "arraybuffer";
  const stream = {
    ws, mode, audio, fps: 25, started: false, ended: false, recording: null, dropped: 0,
    sent: 0, sends: [], sendIndex: 0, // [samples sent so far, when] per message, for the latency
    queue: [], frames: 0, late: 0, arrivals: [], latencies: [], playStart: 0, duration: 0, stopPlayback: null,
    cleanup: [],
  };
  return new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") {
        onFrame(stream, event.data);
        return;
      }
      const message = JSON.parse(event.data);
      if (message.error) {
        if (!stream.started) reject(new Error(message.error));
        else say(message.error, "error");
      } else if (message.degraded) {
        // frames keep their own times, so fewer of them still play in step with the sound
        const d = message.degraded;
        $("quality").textContent = d.level ? `${d.fps} fps, ${d.size} px` : "full";
        say(`${d.reason[0].toUpperCase()}${d.reason.slice(1)}.`);
      } else if (message.end) {
        stream.ended = true;
        stream.recording = message.recording;
        stream.dropped = message.dropped || 0;
      } else if (message.fps && !stream.started) {
        stream.fps = message.fps;
        stream.started = true;
        ws.send(JSON.stringify({ controls: currentControls() }));
        resolve(stream);
      }
    };
    ws.onclose = (event) => {
      if (!stream.started) reject(new Error(`the connection closed (code ${event.code})`));
      else finishLive(stream, event);
    };
  });
}

function sendPcm(stream, int16) {
  if (stream.ws.readyState !== WebSocket.OPEN) return;
  stream.ws.send(int16);
  stream.sent += int16.length;
  stream.sends.push([stream.sent, performance.now()]);
}

function sendText(stream, message) {
  if (stream.channel) {
    if (stream.channel.readyState === "open") stream.channel.send(JSON.stringify(message));
  } else if (stream.ws.readyState === WebSocket.OPEN) {
    stream.ws.send(JSON.stringify(message));
  }
}

function endStream(stream) {
  for (const undo of stream.cleanup.splice(0)) undo();
  sendText(stream, { end: true });
}

function onFrame(stream, buffer) {
  const now = performance.now();
  const header = new DataView(buffer, 0, HEADER_BYTES);
  const time = header.getFloat64(4, true);
  // Latency: this frame shows the sound of [time, time + 1/fps); it is due once that was sent.
  const due = Math.round((time + 1 / stream.fps) * RATE);
  while (stream.sendIndex < stream.sends.length && stream.sends[stream.sendIndex][0] < due) stream.sendIndex++;
  if (stream.sendIndex < stream.sends.length) {
    stream.latencies.push([now, now - stream.sends[stream.sendIndex][1]]);
  }
  if (stream.sendIndex > 2000) {
    stream.sends.splice(0, stream.sendIndex);
    stream.sendIndex = 0;
  }
  stream.arrivals.push(now);
  stream.frames += 1;
  if (stream.mode === "file" && audibleTime(stream) - stream.playStart > time + 1 / stream.fps) stream.late += 1;
  const jpeg = new Blob([new Uint8Array(buffer, HEADER_BYTES)], { type: "image/jpeg" });
  createImageBitmap(jpeg).then((bitmap) => stream.queue.push({ time, bitmap }));
}

function audibleTime(stream) {
  // The context time being heard now (the output device lags currentTime a little).
  const ctx = stream.audio;
  if (ctx.getOutputTimestamp) {
    const stamp = ctx.getOutputTimestamp();
    if (stamp.contextTime > 0) return stamp.contextTime + (performance.now() - stamp.performanceTime) / 1000;
  }
  return ctx.currentTime - (ctx.outputLatency || 0);
}

function draw(stream) {
  let show = null;
  if (stream.mode === "mic") {
    show = stream.queue.pop() || null; // the newest frame now; older ones are stale
    for (const old of stream.queue.splice(0)) old.bitmap.close();
  } else {
    const heard = audibleTime(stream) - stream.playStart;
    while (stream.queue.length && stream.queue[0].time <= heard) {
      if (show) show.bitmap.close();
      show = stream.queue.shift();
    }
  }
  if (show) {
    painter.drawImage(show.bitmap, 0, 0, view.width, view.height);
    show.bitmap.close();
  }
}

function showStats(stream) {
  const now = performance.now();
  while (stream.arrivals.length && stream.arrivals[0] < now - 1000) stream.arrivals.shift();
  while (stream.latencies.length && stream.latencies[0][0] < now - 1000) stream.latencies.shift();
  if (stream.pc) rtcLatency(stream, now);
  $("frames").textContent = stream.frames;
  $("fps").textContent = stream.arrivals.length ? `${stream.arrivals.length}` : "–";
  if (stream.latencies.length) {
    const sorted = stream.latencies.map((l) => l[1]).sort((a, b) => a - b);
    $("latency").textContent = `${Math.round(sorted[sorted.length >> 1])} ms`;
  }
}

function run(stream) {
  live = stream;
  setBusy(true);
  $("state").textContent = stream.mode === "mic" ? "listening" : "streaming";
  $("frames").textContent = "0";
  $("latency").textContent = "–";
  $("quality").textContent = "full";
  let lastStats = 0;
  const tick = (now) => {
    draw(stream);
    if (now - lastStats > 250) {
      showStats(stream);
      lastStats = now;
    }
    const playing = stream.mode === "file" && stream.audio.state === "running" && stream.queue.length > 0;
    if (live === stream || playing) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function finishLive(stream, closeEvent) {
  if (stream.finished) return;
  stream.finished = true;
  for (const undo of stream.cleanup.splice(0)) undo();
  if (live === stream) live = null;
  if (stream.pc) closeRtc(stream);
  showStats(stream);
  setBusy(false);
  $("state").textContent = stream.ended ? "finished" : "disconnected";
  $("fps").textContent = "–";
  if (stream.mode === "file" && stream.ended && !stream.pc) {
    // let the last queued frames play out with their sound, then free the audio device
    const left = Math.max(0, stream.playStart + stream.duration - stream.audio.currentTime);
    setTimeout(() => stream.audio.close(), (left + 0.5) * 1000);
  } else {
    if (stream.stopPlayback) stream.stopPlayback();
    stream.audio.close();
  }
  if (stream.ended) {
    if (stream.recording) {
      const link = $("download");
      link.href = stream.recording;
      link.download = "facetalk-live.mp4";
      link.hidden = false;
    }
    if (!$("message").classList.contains("error")) {
      const timing = stream.mode === "file" && !stream.pc ? (stream.late ? `, ${stream.late} too late` : ", all on time") : "";
      const saved = stream.recording ? " The recording can be downloaded once." : "";
      const shed = stream.dropped ? ` (${stream.dropped} more left out by the server to stay live)` : "";
      say(`Done: ${stream.frames} frames${timing}${shed}.${saved}`, "ok");
    }
  } else if (!$("message").classList.contains("error")) {
    say(`The connection closed (${closeEvent.code}); start again when ready.`, "error");
  }
}

$("download").addEventListener("click", () => setTimeout(() => { $("download").hidden = true; }, 500));
$("stop").addEventListener("click", () => {
  if (!live) return;
  if (live.stopPlayback) live.stopPlayback();
  endStream(live);
});

// -- WebRTC ----------------------------------------------------------------------------------------

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS); // send what was gathered (a slow STUN/TURN server)
  });
}

async function openRtc(mode, audio, track) {
  const pc = new RTCPeerConnection({ iceServers: avatar.ice_servers || [] });
  const channel = pc.createDataChannel("control");
  const stream = {
    pc, channel, ws: null, mode, audio, fps: 25, started: false, ended: false, finished: false, recording: null,
    dropped: 0, queue: [], frames: 0, late: 0, arrivals: [], latencies: [], playout: [], serverMs: null,
    rttMs: null, statsAt: 0, playStart: 0, duration: 0, stopPlayback: null, cleanup: [],
  };
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTrack(track, new MediaStream([track]));
  pc.ontrack = (event) => {
    // the face and its sound arrive as one MediaStream: the browser keeps them in sync
    if (remote.srcObject !== event.streams[0]) remote.srcObject = event.streams[0];
    // The server already sends sound and frames together, on time: ask the browser for its
    // smallest jitter buffer (its default targets a far-away peer), for the sound and so the face.
    if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
    else if ("playoutDelayHint" in event.receiver) event.receiver.playoutDelayHint = 0;
  };
  const started = new Promise((resolve, reject) => {
    channel.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.fps && !stream.started) {
        stream.fps = message.fps;
        stream.started = true;
        $("delay-ms").textContent = message.delay_ms;
        resolve(stream);
      } else {
        onRtcMessage(stream, message);
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState !== "failed" && pc.connectionState !== "closed") return;
      if (!stream.started) reject(new Error(`the WebRTC connection ${pc.connectionState}`));
      else finishLive(stream, { code: `WebRTC ${pc.connectionState}` });
    };
    setTimeout(() => reject(new Error("the server did not open the control channel in time")), 30000);
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(avatar.webrtc, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", controls: currentControls() }),
    });
    if (!response.ok) throw new Error(await readError(response));
    await pc.setRemoteDescription(await response.json());
    await started;
  } catch (err) {
    pc.close();
    throw err;
  }
  remote.hidden = false;
  remote.muted = false;
  remote.play().catch(() => say("Press play on the video to hear the voice (the browser blocked autoplay).", "error"));
  watchFrames(stream);
  window.facetalkStream = stream; // for the browser test and the curious: getStats() on stream.pc
  return stream;
}

function onRtcMessage(stream, message) {
  if (message.error) {
    say(message.error, "error");
  } else if (message.degraded) {
    const d = message.degraded;
    $("quality").textContent = d.level ? `${d.fps} fps, ${d.size} px` : "full";
    say(`${d.reason[0].toUpperCase()}${d.reason.slice(1)}.`);
  } else if (message.stats) {
    stream.serverMs = message.stats.latency_ms;
  } else if (message.controls) {
    stream.controls = message.controls; // the server's word that an update took effect
  } else if (message.end) {
    stream.ended = true;
    stream.end = message;
    stream.recording = message.recording;
    stream.dropped = message.dropped || 0;
    setTimeout(() => finishLive(stream, { code: "ended" }), END_PLAYOUT_MS);
  }
}

function watchFrames(stream) {
  if (!remote.requestVideoFrameCallback) return;
  const onFrame = (now, meta) => {
    if (stream.finished) return;
    stream.frames += 1;
    stream.arrivals.push(performance.now());
    if (meta.receiveTime && meta.expectedDisplayTime) {
      stream.playout.push([performance.now(), meta.expectedDisplayTime - meta.receiveTime]);
    }
    remote.requestVideoFrameCallback(onFrame);
  };
  remote.requestVideoFrameCallback(onFrame);
}

function rtcLatency(stream, now) {
  // The server's part (a frame's release after its sound came in), the network both ways, and the
  // browser's own playout delay: what a speaker waits to see their words on the lips.
  while (stream.playout.length && stream.playout[0][0] < now - 1000) stream.playout.shift();
  if (now - stream.statsAt > 1000) {
    stream.statsAt = now;
    stream.pc.getStats().then((report) => {
      report.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
          stream.rttMs = 1000 * s.currentRoundTripTime;
        }
      });
    });
  }
  if (stream.serverMs === null) return;
  const playout = stream.playout.map((p) => p[1]).sort((a, b) => a - b);
  const ms = stream.serverMs + (stream.rttMs || 0) + (playout.length ? playout[playout.length >> 1] : 0);
  stream.latencies = [[now, ms]];
}

function closeRtc(stream) {
  if (remote.videoWidth) painter.drawImage(remote, 0, 0, view.width, view.height); // the last frame stays
  $("placeholder").hidden = true;
  remote.hidden = true;
  remote.srcObject = null;
  stream.pc.close();
}

// -- microphone ----------------------------------------------------------------------------------

$("mic").addEventListener("click", async () => {
  if (TRANSPORT === "webrtc") {
    micRtc();
    return;
  }
  const audio = new AudioContext(); // made in the click, so the browser lets it run
  $("download").hidden = true;
  say("Opening the microphone…");
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await audio.audioWorklet.addModule("/static/audio-worklet.js");
  } catch (err) {
    audio.close();
    say(`The microphone is not available: ${err.message}`, "error");
    return;
  }
  let stream;
  try {
    stream = await openLive("mic", audio);
  } catch (err) {
    mic.getTracks().forEach((t) => t.stop());
    audio.close();
    say(err.message, "error");
    return;
  }
  const source = audio.createMediaStreamSource(mic);
  const resampler = new AudioWorkletNode(audio, "pcm16k", { processorOptions: { chunk: CHUNK } });
  const mute = audio.createGain(); // keeps the worklet pulled by the graph without echoing the voice
  mute.gain.value = 0;
  source.connect(resampler).connect(mute).connect(audio.destination);
  resampler.port.onmessage = (event) => sendPcm(stream, new Int16Array(event.data));
  stream.cleanup.push(() => {
    resampler.port.onmessage = null;
    source.disconnect();
    mic.getTracks().forEach((t) => t.stop());
  });
  say("Listening: talk, and move the controls.", "ok");
  run(stream);
});

async function micRtc() {
  $("download").hidden = true;
  say("Opening the microphone…");
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    say(`The microphone is not available: ${err.message}`, "error");
    return;
  }
  const audio = new AudioContext();
  let stream;
  try {
    stream = await openRtc("mic", audio, mic.getAudioTracks()[0]);
  } catch (err) {
    mic.getTracks().forEach((t) => t.stop());
    audio.close();
    say(err.message, "error");
    return;
  }
  stream.cleanup.push(() => mic.getTracks().forEach((t) => t.stop()));
  say("Listening: talk, and move the controls.", "ok");
  run(stream);
}

// -- audio file ----------------------------------------------------------------------------------

async function to16k(decoded) {
  const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * RATE), RATE);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  const mono = (await offline.startRendering()).getChannelData(0);
  const pcm = new Int16Array(mono.length);
  for (let i = 0; i < mono.length; i++) pcm[i] = Math.round(Math.max(-1, Math.min(1, mono[i])) * 32767);
  return pcm;
}

$("audio-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const audio = new AudioContext();
  $("download").hidden = true;
  say(`Decoding ${file.name}…`);
  let decoded, pcm;
  try {
    decoded = await audio.decodeAudioData(await file.arrayBuffer());
    pcm = await to16k(decoded);
  } catch (err) {
    audio.close();
    say(`Cannot decode ${file.name} in this browser; choose a WAV, MP3, M4A, OGG or FLAC file.`, "error");
    return;
  }
  if (TRANSPORT === "webrtc") {
    fileRtc(file, audio, decoded);
    return;
  }
  let stream;
  try {
    stream = await openLive("file", audio);
  } catch (err) {
    audio.close();
    say(err.message, "error");
    return;
  }
  const t0 = audio.currentTime + 0.05;
  stream.playStart = t0 + PLAY_DELAY_S;
  stream.duration = decoded.duration;
  const player = audio.createBufferSource();
  player.buffer = decoded;
  player.connect(audio.destination);
  player.start(stream.playStart);
  // Send in real time by the audio clock, 20 ms at a time, catching up after any timer delay.
  const timer = setInterval(() => {
    const due = Math.min(pcm.length, Math.floor((audio.currentTime - t0) * RATE));
    while (stream.sent < due) sendPcm(stream, pcm.subarray(stream.sent, Math.min(due, stream.sent + CHUNK)));
    if (stream.sent >= pcm.length) endStream(stream);
  }, 20);
  stream.cleanup.push(() => clearInterval(timer));
  stream.stopPlayback = () => {
    try { player.stop(); } catch (_) { /* already stopped */ }
  };
  say(`Streaming ${file.name} (${decoded.duration.toFixed(1)} s).`, "ok");
  run(stream);
});

async function fileRtc(file, audio, decoded) {
  // The file is played into the connection, not out loud: its sound comes back with the face.
  const player = audio.createBufferSource();
  player.buffer = decoded;
  const out = audio.createMediaStreamDestination();
  player.connect(out);
  let stream;
  try {
    stream = await openRtc("file", audio, out.stream.getAudioTracks()[0]);
  } catch (err) {
    audio.close();
    say(err.message, "error");
    return;
  }
  stream.duration = decoded.duration;
  player.onended = () => setTimeout(() => endStream(stream), 300);
  player.start();
  stream.stopPlayback = () => {
    player.onended = null;
    try { player.stop(); } catch (_) { /* already stopped */ }
  };
  say(`Streaming ${file.name} (${decoded.duration.toFixed(1)} s).`, "ok");
  run(stream);
}

// -- start -----------------------------------------------------------------------------------------

$("delay-ms").textContent = Math.round(PLAY_DELAY_S * 1000);
showControls();
setBusy(false);
$("transport-hint").textContent = TRANSPORT === "webrtc"
  ? "Over WebRTC: the face and its voice come back together (?transport=ws uses the WebSocket)."
  : "Over the WebSocket (drop ?transport=ws for WebRTC).";
if (!window.isSecureContext) {
  $("voice-hint").textContent = "The microphone needs https or localhost; an audio file works here too.";
}
