// The reading screen: asks the server for the reader's next item, shows its images, sends the answer.
// The server decides everything (order, which item is current, whether an answer is accepted).
"use strict";

const FIVE_POINT = ["1 definitely no defect", "2 probably no defect", "3 possibly a defect",
                    "4 probably a defect", "5 definitely a defect"];
const VIEW_NAMES = {"short-axis": "short axis", "vertical-long-axis": "vertical long axis",
                    "horizontal-long-axis": "horizontal long axis"};
let study = null;
let current = null;
let busy = false;

function $(id) { return document.getElementById(id); }

async function call(path, options) {
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  if (response.status === 401) { window.location.href = "/"; throw new Error("not logged in"); }
  const body = await response.json();
  return {status: response.status, body: body};
}

function panel(title, imageIds) {
  const box = document.createElement("div");
  box.className = "panel";
  if (title) { const h = document.createElement("h3"); h.textContent = title; box.appendChild(h); }
  const views = document.createElement("div");
  views.className = "views";
  imageIds.forEach(function (id, v) {
    const view = document.createElement("div");
    view.className = "view";
    const img = document.createElement("img");
    img.src = "/api/images/" + id;
    img.alt = VIEW_NAMES[study.views[v]];
    const label = document.createElement("span");
    label.textContent = VIEW_NAMES[study.views[v]];
    view.appendChild(img);
    view.appendChild(label);
    views.appendChild(view);
  });
  box.appendChild(views);
  return box;
}

function answerControls() {
  const box = $("answer");
  box.replaceChildren();
  if (study.paradigm === "2afc") {
    [["left", "Defect on the LEFT"], ["right", "Defect on the RIGHT"]].forEach(function (pair) {
      const b = document.createElement("button");
      b.type = "button"; b.id = "choice-" + pair[0]; b.textContent = pair[1];
      b.addEventListener("click", function () { send({choice: pair[0]}); });
      box.appendChild(b);
    });
  } else if (study.scale === "5") {
    FIVE_POINT.forEach(function (label, i) {
      const b = document.createElement("button");
      b.type = "button"; b.id = "score-" + (i + 1); b.dataset.score = String(i + 1); b.textContent = label;
      b.addEventListener("click", function () { send({score: i + 1}); });
      box.appendChild(b);
    });
  } else {
    const low = document.createElement("span"); low.textContent = "0 certainly no defect";
    const slider = document.createElement("input");
    slider.type = "range"; slider.min = "0"; slider.max = "100"; slider.step = "1"; slider.value = "50"; slider.id = "slider";
    const high = document.createElement("span"); high.textContent = "100 certainly a defect";
    const value = document.createElement("output"); value.id = "slider-value"; value.textContent = "50";
    slider.addEventListener("input", function () { value.textContent = slider.value; });
    const b = document.createElement("button");
    b.type = "button"; b.id = "submit-score"; b.textContent = "Submit";
    b.addEventListener("click", function () { send({score: Number(slider.value)}); });
    [low, slider, high, value, b].forEach(function (e) { box.appendChild(e); });
  }
}

function enable(on) {
  document.querySelectorAll("#answer button, #answer input").forEach(function (e) { e.disabled = !on; });
}

function showProgress(p) {
  const training = current && current.phase === "training";
  $("phase").textContent = training ? "Training" : "Study";
  const done = training ? p.training_done : p.study_done;
  const total = training ? p.training_total : p.study_total;
  $("progress").textContent = (training ? "training case " : "case ") + Math.min(done + 1, total) + " of " + total;
  $("bar").max = Math.max(total, 1);
  $("bar").value = done;
}

async function loadNext() {
  $("feedback").hidden = true;
  $("status").textContent = "";
  const reply = await call("/api/next");
  current = reply.body;
  if (current.item === null) {
    $("screen").hidden = true; $("answer").hidden = true; $("done").hidden = false;
    $("phase").textContent = "Finished";
    $("progress").textContent = current.study_done + " of " + current.study_total + " cases read";
    $("bar").max = Math.max(current.study_total, 1); $("bar").value = current.study_done;
    document.body.dataset.state = "done";
    return;
  }
  const panels = $("panels");
  panels.replaceChildren();
  panels.className = current.images.length === 2 ? "pair" : "single";
  if (current.images.length === 2) {
    panels.appendChild(panel("Left", current.images[0]));
    panels.appendChild(panel("Right", current.images[1]));
  } else {
    panels.appendChild(panel(null, current.images[0]));
  }
  $("screen").hidden = false; $("answer").hidden = false;
  showProgress(current);
  enable(true);
  document.body.dataset.item = String(current.item);
  document.body.dataset.state = current.phase;
}

async function send(answer) {
  if (busy || current === null || current.item === null) { return; }
  busy = true;
  enable(false);
  try {
    const reply = await call("/api/answer", {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(Object.assign({item: current.item}, answer))});
    if (reply.status === 409) {  // answered in another tab, or no longer the current case
      await loadNext();
      $("status").textContent = reply.body.error + "; showing your next case.";
      return;
    }
    if (reply.status !== 200) { $("status").textContent = reply.body.error; enable(true); return; }
    if (reply.body.truth) {
      const t = reply.body.truth;
      $("truth").textContent = study.paradigm === "2afc"
        ? "The defect was on the " + t.defect_side + ": your choice was " + (t.correct ? "right." : "wrong.")
        : (t.defect_present ? "Defect PRESENT in this case." : "NO defect in this case.");
      $("feedback").hidden = false;
      document.body.dataset.state = "feedback";
      $("next").focus();
    } else {
      await loadNext();
    }
  } finally {
    busy = false;
  }
}

async function start() {
  study = (await call("/api/study")).body;
  $("reader").textContent = "Reader: " + study.reader;
  $("task").textContent = (study.paradigm === "2afc" ? "Which image shows the perfusion defect" : "Is there a perfusion defect")
    + " (" + study.defect + ")?";
  $("window-top").textContent = study.window_kbq_per_ml[1].toFixed(1) + " kBq/mL";
  answerControls();
  $("next").addEventListener("click", loadNext);
  await loadNext();
}

document.addEventListener("DOMContentLoaded", start);
