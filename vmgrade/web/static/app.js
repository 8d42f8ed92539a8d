// vmgrade: light progressive enhancement. Every page works without it except recording.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function showError(message) {
  const box = document.getElementById("upload-error");
  box.textContent = message;
  box.hidden = !message;
}

async function sendUpload(form, blob, filename) {
  const data = new FormData(form);
  if (blob) {
    data.set("file", blob, filename);
    data.set("source", "browser");
  }
  const file = data.get("file");
  if (!file || !file.size) {
    showError("Choose a file to upload, or record one.");
    return;
  }
  const maxBytes = Number(form.dataset.maxBytes);
  if (file.size > maxBytes) {
    showError(`${file.name || "recording"}: file is over the ${Math.round(maxBytes / 1048576)} MB limit`);
    return;
  }
  showError("");
  const progress = document.getElementById("upload-progress");
  const button = document.getElementById("upload-submit");
  progress.textContent = "Uploading…";
  button.disabled = true;
  try {
    const response = await fetch("/api/uploads", {
      method: "POST",
      body: data,
      headers: {"X-CSRF-Token": csrfToken()},
      credentials: "same-origin",
    });
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (response.ok) {
      window.location.assign(body.page_url);
      return;
    }
    showError(body.detail || `Upload failed (HTTP ${response.status}).`);
  } catch (e) {
    showError(`Upload failed: ${e.message}`);
  } finally {
    progress.textContent = "";
    button.disabled = false;
  }
}

function setupUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  let recorded = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const fileInput = document.getElementById("file");
    if (fileInput.files.length) {
      sendUpload(form, null, null);
    } else if (recorded) {
      sendUpload(form, recorded.blob, recorded.name);
    } else {
      showError("Choose a file to upload, or record one.");
    }
  });

  const start = document.getElementById("record-start");
  const stop = document.getElementById("record-stop");
  const status = document.getElementById("record-status");
  const preview = document.getElementById("record-preview");
  if (!window.MediaRecorder || !navigator.mediaDevices) {
    start.disabled = true;
    status.textContent = "This browser cannot record; upload a file instead.";
    return;
  }
  const maxSeconds = Number(form.dataset.maxSeconds);
  let recorder = null, chunks = [], timer = null, started = 0;
  start.addEventListener("click", async () => {
    showError("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: true});
    } catch (e) {
      showError(`No microphone: ${e.message}`);
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg;codecs=opus"]
      .find((t) => MediaRecorder.isTypeSupported(t)) || "";
    recorder = new MediaRecorder(stream, type ? {mimeType: type} : {});
    chunks = [];
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      clearInterval(timer);
      const mime = recorder.mimeType || "audio/webm";
      const blob = new Blob(chunks, {type: mime});
      const ext = mime.includes("mp4") ? "m4a" : mime.includes("ogg") ? "ogg" : "webm";
      recorded = {blob, name: `recording.${ext}`};
      preview.src = URL.createObjectURL(blob);
      preview.hidden = false;
      status.textContent = `Recorded ${((Date.now() - started) / 1000).toFixed(1)} s. Press "Upload and grade".`;
      status.dataset.state = "recorded";
      start.disabled = false;
      stop.disabled = true;
    };
    recorder.start(1000);
    started = Date.now();
    status.dataset.state = "recording";
    status.textContent = "Recording… 0 s";
    timer = setInterval(() => {
      const s = (Date.now() - started) / 1000;
      status.textContent = `Recording… ${s.toFixed(0)} s`;
      if (s >= maxSeconds) recorder.stop();
    }, 500);
    start.disabled = true;
    stop.disabled = false;
  });
  stop.addEventListener("click", () => { if (recorder && recorder.state !== "inactive") recorder.stop(); });
}

function setupJobPolling() {
  const box = document.getElementById("job");
  if (!box || !["queued", "running"].includes(box.dataset.state)) return;
  const stateEl = document.getElementById("job-state");
  const detail = document.getElementById("job-detail");
  const progress = document.getElementById("job-progress");
  const poll = async () => {
    try {
      const response = await fetch(`/api/recordings/${box.dataset.id}`, {credentials: "same-origin"});
      if (response.ok) {
        const job = await response.json();
        stateEl.textContent = job.state;
        stateEl.className = `state state-${job.state}`;
        if (job.state === "queued") {
          detail.textContent = `(${job.queue_position} ahead in the queue)`;
          progress.value = 1;
        } else if (job.state === "running") {
          const s = job.started_at ? (Date.now() - Date.parse(job.started_at)) / 1000 : 0;
          detail.textContent = `(transcribing and scoring… ${Math.max(0, s).toFixed(0)} s)`;
          progress.value = 2;
        } else {
          window.location.reload();
          return;
        }
      }
    } catch (e) { /* server restarting: keep polling */ }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}

function setupCompare() {
  for (const form of document.querySelectorAll("#compare-form")) {
    form.addEventListener("submit", (event) => {
      if (form.querySelectorAll('input[name="ids"]:checked').length < 2) {
        event.preventDefault();
        alert("Tick two or more graded recordings to compare.");
      }
    });
  }
}

// The report in the recording page grows to its content (same origin), so the page scrolls, not a frame.
function setupReportFrame() {
  const frame = document.getElementById("report-frame");
  if (!frame) return;
  const fit = () => {
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    // the root's own box is as tall as the content (scrollHeight would never shrink below the frame)
    frame.style.height = `${Math.ceil(doc.documentElement.getBoundingClientRect().height) + 2}px`;
  };
  const watch = () => {
    fit();
    const doc = frame.contentDocument;
    if (doc && doc.body && window.ResizeObserver) new ResizeObserver(fit).observe(doc.body);
  };
  frame.addEventListener("load", watch);
  if (frame.contentDocument && frame.contentDocument.readyState === "complete") watch();
  window.addEventListener("resize", fit);
}

document.addEventListener("DOMContentLoaded", () => {
  setupReportFrame();
  setupUpload();
  setupJobPolling();
  setupCompare();
});
