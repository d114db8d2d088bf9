// The flow viewer: lists the caller's recent orders (GET orders) and draws one order of each
// flow as a sequence diagram from its timeline (GET orders/{id}/timeline). No build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LANE_WIDTH = 165;
const ROW_HEIGHT = 30;
const TOP = 46;
const LEFT = 70;
let token = "";

function element(tag, attributes, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${body.code || ""}: ${body.message || ""}`);
  return body;
}

function age(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

async function showOrders() {
  const status = document.getElementById("status-line");
  try {
    const listing = await api("orders");
    document.getElementById("who").textContent = `Signed in as ${listing.principal}.`;
    const rows = document.querySelector("#orders tbody");
    rows.replaceChildren();
    for (const order of listing.orders) {
      const row = element("tr", { "data-order-id": order.order_id, "data-flow": order.flow });
      if (order.overdue) row.classList.add("overdue");
      row.append(
        element("td", {}, order.order_id.slice(0, 8)),
        element("td", {}, order.flow),
        element("td", { class: "status" }, order.status),
        element("td", {}, age(order.age_seconds)),
        element("td", {}, order.placed_at),
      );
      row.addEventListener("click", () => showFlow(order.order_id, order.flow));
      rows.append(row);
    }
    document.getElementById("orders").hidden = false;
    status.textContent = `${listing.orders.length} orders, newest first.`;
    for (const flow of ["choreography", "orchestration", "durable"]) {
      const newest = listing.orders.find((order) => order.flow === flow);
      if (newest) await showFlow(newest.order_id, flow);
    }
  } catch (error) {
    status.textContent = `Could not list orders: ${error.message}`;
  }
}

async function showFlow(orderId, flow) {
  const target = document.querySelector(`#flow-${flow} .diagram`);
  document.querySelectorAll(`tr[data-flow="${flow}"]`).forEach((row) =>
    row.classList.toggle("chosen", row.dataset.orderId === orderId));
  try {
    const timeline = await api(`orders/${encodeURIComponent(orderId)}/timeline`);
    target.classList.remove("empty");
    target.replaceChildren(
      element("div", { class: "caption" },
        `order ${orderId.slice(0, 8)}: ${timeline.status}, placed ${timeline.placed_at}`),
      traceLine(timeline.trace),
      sequenceDiagram(timeline),
    );
    target.dataset.orderId = orderId;
  } catch (error) {
    target.textContent = `Could not load the timeline: ${error.message}`;
  }
}

// The order's X-Ray trace id, and links to the trace and to every trace of the order in the
// AWS console (made by the API; only https links are followed). Text goes in as text, never HTML.
function traceLine(trace) {
  const line = element("div", { class: "trace" });
  if (!trace) {
    line.textContent = "No trace recorded for this order.";
    return line;
  }
  line.append("trace ", element("code", { class: "trace-id" }, trace.trace_id));
  const links = [
    [trace.console_url, "trace-link", "open the trace"],
    [trace.order_query_url, "order-traces-link", "every trace of the order"],
  ];
  for (const [url, name, text] of links) {
    if (typeof url !== "string" || !url.startsWith("https://")) continue;
    line.append(" · ", element("a", { href: url, class: name, target: "_blank", rel: "noopener noreferrer" }, text));
  }
  return line;
}

// Services as lanes, steps as arrows from the service of the step before to the service
// that took this one, each labelled with its name and the time since the order was placed.
function sequenceDiagram(timeline) {
  const lanes = [];
  for (const step of timeline.steps) if (!lanes.includes(step.service)) lanes.push(step.service);
  const x = (service) => LEFT + lanes.indexOf(service) * LANE_WIDTH + LANE_WIDTH / 2;
  const height = TOP + timeline.steps.length * ROW_HEIGHT + 10;
  const svg = element("svg:svg", {
    width: LEFT + lanes.length * LANE_WIDTH, height, role: "img",
    "aria-label": `sequence of order ${timeline.order_id}`,
  });
  lanes.forEach((service) => {
    svg.append(
      element("svg:text", { x: x(service), y: 16, "text-anchor": "middle", class: "lane-name" }, service),
      element("svg:line", { x1: x(service), y1: 24, x2: x(service), y2: height, class: "lane" }),
    );
  });
  let from = timeline.steps.length ? timeline.steps[0].service : "";
  timeline.steps.forEach((step, index) => {
    const y = TOP + index * ROW_HEIGHT;
    const group = element("svg:g", { class: `step ${step.kind}`, "data-step": step.step });
    const [x1, x2] = [x(from), x(step.service)];
    const path = x1 === x2
      ? `M ${x1} ${y - 8} h 18 v 8 h -18`
      : `M ${x1} ${y} L ${x2} ${y} m ${x2 > x1 ? -6 : 6} -4 l ${x2 > x1 ? 6 : -6} 4 l ${x2 > x1 ? -6 : 6} 4`;
    group.append(
      element("svg:text", { x: 4, y: y + 4, class: "time" }, `+${(step.since_placed_ms / 1000).toFixed(2)}s`),
      element("svg:path", { d: path, class: "arrow" }),
      element("svg:text", { x: Math.min(x1, x2) + 8 + (x1 === x2 ? 16 : 0), y: y - 4 },
        `${step.step} (+${step.since_previous_ms} ms)`),
    );
    svg.append(group);
    from = step.service;
  });
  return svg;
}

function signIn(value) {
  token = value.trim();
  if (!token) return;
  sessionStorage.setItem("orders-token", token);
  showOrders();
}

document.getElementById("use-token").addEventListener("click", () =>
  signIn(document.getElementById("token").value));
// A link with #token=... (make run prints one for the local stage) signs in at once; the
// fragment never reaches the server, and is removed from the address bar.
const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromLink) history.replaceState(null, "", location.pathname + location.search);
const remembered = fromLink || sessionStorage.getItem("orders-token");
if (remembered) signIn(remembered);
