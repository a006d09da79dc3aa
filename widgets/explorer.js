// Front end of glurpc_lab.widgets.ForecastExplorer: upload control, quality
// panel, SVG fan chart and window slider. Plain DOM and SVG, no libraries,
// so the file ships as is inside the Python package and loads nothing else.

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 760;
const HEIGHT = 380;
const MARGIN = { top: 16, right: 24, bottom: 44, left: 56 };
const HYPO = 70;
const HYPER = 180;
const FLAGS = [
  ["too_short", "too short"],
  ["calibration", "calibration"],
  ["quality", "quality"],
  ["imputation", "imputation"],
  ["out_of_range", "out of range"],
  ["time_duplicates", "time duplicates"],
];

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgElement(tag, attributes) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    node.setAttribute(name, String(value));
  }
  return node;
}

// Copy each buffer into its own ArrayBuffer: a DataView from the websocket
// may start at an offset that is not a multiple of 4.
function toFloat32(view) {
  const start = view.byteOffset;
  return new Float32Array(view.buffer.slice(start, start + view.byteLength));
}

function requestId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

// Series times are naive, so they are parsed and printed as UTC to keep the
// browser's time zone out of the labels.
function clockLabel(timeEndIso, minutes) {
  const date = new Date(Date.parse(`${timeEndIso}Z`) + minutes * 60000);
  const hours = String(date.getUTCHours()).padStart(2, "0");
  const mins = String(date.getUTCMinutes()).padStart(2, "0");
  return `${hours}:${mins}`;
}

function niceStep(span) {
  for (const step of [10, 20, 25, 50, 100]) {
    if (span / step <= 8) return step;
  }
  return 200;
}

function renderQuality(panel, quality) {
  panel.replaceChildren();
  if (!quality || Object.keys(quality).length === 0) return;

  const flags = element("div", "glurpc-flags");
  for (const [name, label] of FLAGS) {
    const set = Boolean(quality[name]);
    const chip = element("span", `glurpc-flag ${set ? "set" : "clear"}`, `${label}: ${set ? "set" : "clear"}`);
    chip.dataset.flag = name;
    flags.append(chip);
  }
  panel.append(element("h4", "", "Data quality"), flags);

  const dropped = Object.values(quality.dropped || {}).reduce((sum, n) => sum + n, 0);
  const rows = [
    ["Readings in the file", quality.readings_in],
    ["Readings used", quality.readings_used],
    ["Readings repaired", quality.readings_repaired],
    ["Readings dropped", dropped],
    ["Grid points interpolated", quality.points_imputed],
    ["Gap-free segments", quality.segments],
    ["Span", `${quality.span_start ?? "unknown"} to ${quality.span_end ?? "unknown"}`],
    ["Sampling interval", quality.sampling_interval_minutes == null ? "unknown" : `${quality.sampling_interval_minutes} min`],
  ];
  for (const [reason, count] of Object.entries(quality.dropped || {})) {
    rows.push([`Dropped: ${reason}`, count]);
  }
  const table = element("table", "glurpc-counts");
  for (const [label, value] of rows) {
    const row = element("tr");
    row.append(element("th", "", label), element("td", "", String(value)));
    table.append(row);
  }
  panel.append(table);

  if (quality.messages && quality.messages.length) {
    const list = element("ul", "glurpc-messages");
    for (const message of quality.messages) list.append(element("li", "", message));
    panel.append(list);
  }
}

function pathWithGaps(xs, ys, x, y) {
  // Start a new subpath after a missing value or a jump of more than one 5-minute step.
  let d = "";
  let previous = null;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(ys[i])) {
      previous = null;
      continue;
    }
    const jump = previous !== null && xs[i] - xs[previous] > 5.01;
    d += `${previous === null || jump ? "M" : "L"}${x(xs[i]).toFixed(1)},${y(ys[i]).toFixed(1)}`;
    previous = i;
  }
  return d;
}

function drawChart(svg, data) {
  svg.replaceChildren();
  svg.setAttribute("data-window", String(data.window));

  const { history_minutes: hx, history_glucose: hy, history_imputed: himp, horizon_minutes: fx, quantiles, truth } = data.arrays;
  const nLevels = data.levels.length;
  const level = (step, index) => quantiles[step * nLevels + index];

  const values = [HYPO, HYPER, data.last_observed];
  hy.forEach((v) => Number.isFinite(v) && values.push(v));
  truth.forEach((v) => Number.isFinite(v) && values.push(v));
  for (let step = 0; step < fx.length; step++) {
    values.push(level(step, 0), level(step, nLevels - 1));
  }
  const step = niceStep(Math.max(...values) - Math.min(...values));
  const yMin = Math.max(0, Math.floor(Math.min(...values) / step) * step);
  const yMax = Math.ceil(Math.max(...values) / step) * step;
  const xMin = hx.length ? hx[0] : -60;
  const xMax = fx.length ? fx[fx.length - 1] : 60;

  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (minutes) => MARGIN.left + ((minutes - xMin) / (xMax - xMin)) * plotWidth;
  const y = (mgdl) => MARGIN.top + (1 - (mgdl - yMin) / (yMax - yMin)) * plotHeight;

  const axes = svgElement("g", { class: "axes" });
  for (let tick = yMin; tick <= yMax; tick += step) {
    axes.append(svgElement("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick), class: "grid" }));
    const label = svgElement("text", { x: MARGIN.left - 6, y: y(tick) + 4, "text-anchor": "end" });
    label.textContent = String(tick);
    axes.append(label);
  }
  // Hourly ticks counted back from the last input point, which sits at minute 0.
  for (let tick = Math.ceil(xMin / 60) * 60; tick <= xMax; tick += 60) {
    axes.append(svgElement("line", { x1: x(tick), x2: x(tick), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: "grid" }));
    const label = svgElement("text", { x: x(tick), y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" });
    label.textContent = clockLabel(data.time_end, tick);
    axes.append(label);
  }
  const yTitle = svgElement("text", { x: 14, y: MARGIN.top + plotHeight / 2, transform: `rotate(-90 14 ${MARGIN.top + plotHeight / 2})`, "text-anchor": "middle" });
  yTitle.textContent = "Glucose (mg/dL)";
  const xTitle = svgElement("text", { x: MARGIN.left + plotWidth / 2, y: HEIGHT - 6, "text-anchor": "middle" });
  const timeLabel = data.time_zone === "UTC" ? "Time (UTC)" : "Device time";
  xTitle.textContent = `${timeLabel} (input ends ${data.time_end.replace("T", " ").slice(0, 16)})`;
  axes.append(yTitle, xTitle);
  svg.append(axes);

  // Quantiles can fall outside the y range (below 0 mg/dL from an untrained
  // model, for example), so the data layer is clipped to the plot area.
  const clipId = `glurpc-clip-${requestId()}`;
  const defs = svgElement("defs");
  const clip = svgElement("clipPath", { id: clipId });
  clip.append(svgElement("rect", { x: MARGIN.left, y: MARGIN.top, width: plotWidth, height: plotHeight }));
  defs.append(clip);
  const layer = svgElement("g", { "clip-path": `url(#${clipId})` });
  svg.append(defs, layer);

  for (const mgdl of [HYPO, HYPER]) {
    layer.append(svgElement("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(mgdl), y2: y(mgdl), class: "reference" }));
  }
  layer.append(svgElement("line", { x1: x(0), x2: x(0), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: "now" }));

  // Each band is a closed polygon: the last observed value, the upper
  // quantiles forward in time, then the lower quantiles back.
  for (const [coverage, lowerIndex, upperIndex] of data.bands) {
    const points = [[x(0), y(data.last_observed)]];
    for (let s = 0; s < fx.length; s++) points.push([x(fx[s]), y(level(s, upperIndex))]);
    for (let s = fx.length - 1; s >= 0; s--) points.push([x(fx[s]), y(level(s, lowerIndex))]);
    layer.append(svgElement("polygon", {
      class: `band band-${Math.round(coverage * 100)}`,
      points: points.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" "),
    }));
  }

  layer.append(svgElement("path", { class: "observed", d: pathWithGaps(hx, hy, x, y) }));
  for (let i = 0; i < hx.length; i++) {
    if (himp[i] > 0.5 && Number.isFinite(hy[i])) {
      layer.append(svgElement("circle", { class: "imputed", cx: x(hx[i]), cy: y(hy[i]), r: 2.5 }));
    }
  }

  const median = [[x(0), y(data.last_observed)]];
  for (let s = 0; s < fx.length; s++) median.push([x(fx[s]), y(level(s, data.median_index))]);
  layer.append(svgElement("polyline", {
    class: "median",
    points: median.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" "),
  }));

  for (let s = 0; s < fx.length; s++) {
    if (Number.isFinite(truth[s])) {
      layer.append(svgElement("circle", { class: "truth", cx: x(fx[s]), cy: y(truth[s]), r: 3.5 }));
    }
  }
}

function render({ model, el }) {
  const root = element("div", "glurpc-explorer");
  const notice = element("p", "glurpc-notice", model.get("notice"));

  const upload = element("div", "glurpc-upload");
  const input = element("input");
  input.type = "file";
  input.accept = ".csv,.txt,.tsv,.xlsx,.xls";
  const limitMiB = (model.get("max_upload_bytes") / 2 ** 20).toFixed(0);
  const uploadHint = element(
    "span",
    "glurpc-hint",
    `Files up to ${limitMiB} MiB: widget messages share the kernel websocket (about 10 MiB per message). ` +
      "Upload larger exports through the glurpc-lab REST API.",
  );
  upload.append(element("label", "", "CGM export: "), input, uploadHint);

  const status = element("p", "glurpc-status");
  const seriesPicker = element("select", "glurpc-series");
  const quality = element("div", "glurpc-quality");
  const title = element("h4", "glurpc-title");
  const svg = svgElement("svg", { class: "glurpc-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  const sliderRow = element("div", "glurpc-slider-row");
  const slider = element("input", "glurpc-slider");
  slider.type = "range";
  slider.min = "0";
  slider.step = "1";
  const sliderLabel = element("span", "glurpc-slider-label");
  sliderRow.append(slider, sliderLabel);
  const legend = element(
    "p",
    "glurpc-legend",
    "Shaded: 95, 80 and 50% intervals. Red: median forecast. Dark line: observed. Hollow dots: interpolated points. Filled dots: observed after the input. Dotted: 70 and 180 mg/dL.",
  );
  root.append(notice, upload, status, seriesPicker, quality, title, svg, sliderRow, legend);
  el.append(root);

  let pendingWindow = null;

  function requestWindow(windowIndex) {
    pendingWindow = windowIndex;
    model.send({ type: "get_window", request_id: requestId(), window: windowIndex });
  }

  function showState() {
    const state = model.get("status");
    const ready = state === "ready";
    root.dataset.status = state;
    status.classList.toggle("error", state === "error");
    if (state === "processing") status.textContent = "Processing the file and computing forecasts…";
    else if (state === "error") status.textContent = model.get("error");
    else if (state === "empty") status.textContent = "Choose a CGM export to start.";
    else status.textContent = `Model ${model.get("forecast_model_id")}`;

    const subjects = model.get("subjects");
    seriesPicker.replaceChildren(...subjects.map((subject, i) => {
      const option = element("option", "", `Series ${i + 1}: ${subject}`);
      option.value = String(i);
      return option;
    }));
    seriesPicker.value = String(model.get("series_index"));
    seriesPicker.style.display = ready && subjects.length > 1 ? "" : "none";

    renderQuality(quality, ready ? model.get("quality") : null);

    const windows = model.get("n_windows");
    slider.max = String(Math.max(0, windows - 1));
    slider.value = String(Math.max(0, model.get("window")));
    slider.disabled = !ready || windows < 2;
    const chartShown = ready && windows > 0;
    svg.style.display = chartShown ? "" : "none";
    sliderRow.style.display = chartShown ? "" : "none";
    legend.style.display = chartShown ? "" : "none";
    if (ready && windows === 0) title.textContent = "No forecast: no segment has 8 gap-free hours of readings.";
    if (!ready) title.textContent = "";
  }

  function onMessage(message, buffers) {
    if (message.type === "error") {
      status.textContent = message.message;
      status.classList.add("error");
      return;
    }
    if (message.type !== "window") return;
    // Drop replies for windows the user has already moved past.
    if (pendingWindow !== null && message.window !== pendingWindow) return;
    pendingWindow = null;

    const arrays = {};
    message.buffers.forEach((name, i) => {
      arrays[name] = toFloat32(buffers[i]);
    });
    drawChart(svg, { ...message, arrays });
    title.textContent = message.title;
    sliderLabel.textContent = `Window ${message.window + 1} of ${message.n_windows}${message.is_future ? " (latest, past the last reading)" : ""}`;
    slider.value = String(message.window);
  }

  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    if (file.size > model.get("max_upload_bytes")) {
      status.textContent = `The file is ${(file.size / 2 ** 20).toFixed(1)} MiB, above the ${limitMiB} MiB widget limit. Upload it through the glurpc-lab REST API instead.`;
      status.classList.add("error");
      return;
    }
    const content = await file.arrayBuffer();
    status.textContent = "Sending the file to the kernel…";
    model.send({ type: "upload", request_id: requestId(), size: content.byteLength }, undefined, [content]);
  });

  slider.addEventListener("input", () => requestWindow(Number(slider.value)));
  seriesPicker.addEventListener("change", () => {
    model.send({ type: "select_series", request_id: requestId(), index: Number(seriesPicker.value) });
  });

  const synced = ["status", "error", "subjects", "series_index", "n_windows", "window", "quality", "forecast_model_id"];
  model.on("msg:custom", onMessage);
  for (const name of synced) model.on(`change:${name}`, showState);
  showState();
  // Window messages sent before this view existed were not received, so ask again.
  if (model.get("status") === "ready" && model.get("n_windows") > 0) requestWindow(model.get("window"));

  return () => {
    model.off("msg:custom", onMessage);
    for (const name of synced) model.off(`change:${name}`, showState);
  };
}

export default { render };
