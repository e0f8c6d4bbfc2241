// svg_check.mjs - open one of pyspyc's flame-graph SVGs in headless Debian
// Chromium and use it as a person would: hover a frame, click it, search,
// reset.  Prints one JSON object on stdout with what the page showed; the
// caller (tests/integration/test_svg_browser.py) decides what is right.
//
//   node svg_check.mjs FILE.svg --frame NAME --search TERM [--merged] [--dump]
//
// --frame NAME   the frame to hover and click: the widest one whose label is
//                NAME or starts with "NAME (".
// --search TERM  what to type into the Search prompt.
// --merged       also hover and click the widest merged block, zooming into
//                its parent first when it is too narrow to point at.
// --dump         include every box as first drawn (depth, start, samples,
//                label, merged) under "boxes", for comparing with the
//                collapsed stacks of the same run.
//
// Times (loadMs, zoomMs, searchMs) run from the action to the next
// animation frame after it, as a person would wait for them.
//
// The document is read through what a browser sees (the DOM after layout,
// getBoundingClientRect, computed styles): the viewer's own state is never
// consulted, so a viewer that draws the wrong thing fails here.
//
// Exit status: 0 when the checks ran (whatever they found), 2 on bad usage,
// 1 when the page could not be driven (the JSON then has "fatal").
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
import path from "node:path";
import fs from "node:fs";

const CHROMIUM = "/usr/bin/chromium";
// Headless, and quiet on the network: no updates, sync, metrics or
// background fetches while the test runs.  --no-sandbox: the suite runs as
// root, where Chromium refuses to start sandboxed.
const ARGS = [
	"--no-sandbox",
	"--disable-background-networking",
	"--disable-component-update",
	"--no-first-run",
	"--disable-sync",
	"--disable-default-apps",
	"--metrics-recording-only",
	"--disable-domain-reliability",
	"--disable-breakpad",
	"--no-default-browser-check",
	"--disable-dev-shm-usage",
];
const TIMEOUT_MS = 30000;

function usage(msg) {
	process.stderr.write("svg_check: " + msg + "\n" +
		"usage: node svg_check.mjs FILE.svg --frame NAME --search TERM [--merged] [--dump]\n");
	process.exit(2);
}

function parseArgs(argv) {
	const o = { file: null, frame: null, search: null, merged: false, dump: false };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--frame" || a === "--search") {
			if (i + 1 >= argv.length)
				usage(a + " needs a value");
			o[a.slice(2)] = argv[++i];
		} else if (a === "--merged") {
			o.merged = true;
		} else if (a === "--dump") {
			o.dump = true;
		} else if (a.startsWith("--")) {
			usage("unknown option " + a);
		} else if (o.file === null) {
			o.file = a;
		} else {
			usage("one file only");
		}
	}
	if (!o.file || o.frame === null || o.search === null)
		usage("a file, --frame and --search are required");
	if (!fs.existsSync(o.file))
		usage("no such file: " + o.file);
	return o;
}

// ---- functions run inside the page (no closures over node variables) ----

// Every frame as the document describes it, in document order.
function pageFrames() {
	const SEP = " \u2014 ";
	const gs = document.querySelectorAll("#frames > g");
	const out = [];
	for (let i = 0; i < gs.length; i++) {
		const g = gs[i];
		const rect = g.querySelector("rect");
		const title = g.querySelector("title").textContent;
		const k = title.lastIndexOf(SEP);
		const box = rect.getBoundingClientRect();
		out.push({
			i: i,
			d: +g.getAttribute("data-d"),
			s: +g.getAttribute("data-s"),
			n: +g.getAttribute("data-n"),
			merged: g.hasAttribute("data-m"),
			dataM: g.getAttribute("data-m"),
			title: title,
			label: k >= 0 ? title.slice(0, k) : title,
			x: +rect.getAttribute("x"),
			w: +rect.getAttribute("width"),
			y: +rect.getAttribute("y"),
			cls: g.getAttribute("class") || "",
			shown: getComputedStyle(g).display !== "none",
			box: { x: box.x, y: box.y, w: box.width, h: box.height },
		});
	}
	return out;
}

// The geometry the frames are drawn in: the SVG's on-screen width and the
// frame area it declares.
function pageGeometry() {
	const svg = document.documentElement;
	const fg = document.getElementById("frames");
	const box = svg.getBoundingClientRect();
	const vb = svg.viewBox.baseVal;
	return {
		root: svg.localName,
		contentType: document.contentType,
		svgWidth: box.width,
		svgHeight: box.height,
		innerWidth: window.innerWidth,
		viewBoxWidth: vb ? vb.width : null,
		total: +fg.getAttribute("data-total"),
		frameX: +fg.getAttribute("data-x"),
		frameW: +fg.getAttribute("data-w"),
		scripts: document.getElementsByTagName("script").length,
	};
}

// Playwright's own serializer is slow for thousands of objects: the page
// hands over one JSON string instead.
async function framesOf(page) {
	return JSON.parse(await page.evaluate(
		"JSON.stringify((" + pageFrames.toString() + ")())"));
}

function fillOf(i) {
	const g = document.querySelectorAll("#frames > g")[i];
	return getComputedStyle(g.querySelector("rect")).fill;
}

function textOf(id) {
	const e = document.getElementById(id);
	return e ? e.textContent : null;
}

function shownById(id) {
	const e = document.getElementById(id);
	return !!e && getComputedStyle(e).display !== "none";
}

// ---- checks run in node over what the page returned ----

// Nesting and accounting from the DOM alone: every frame lies inside its
// parent (the nearest earlier frame one level up), siblings are packed from
// the parent's left edge with no gap or overlap, and every sample is either
// some drawn frame's own time or inside a merged block, exactly once.
function account(frames, geo) {
	const problems = [];
	const stack = [];
	const childSum = new Map();
	let self = 0, mergedSamples = 0, mergedBlocks = 0, mergedFrames = 0,
		mergedWithCallees = 0;
	for (const f of frames) {
		while (stack.length && stack[stack.length - 1].d >= f.d)
			stack.pop();
		const p = stack.length ? stack[stack.length - 1] : null;
		if (!p) {
			if (f.d !== 0 || f.s !== 0 || f.n !== geo.total)
				problems.push("root " + f.i + " is not [0, total) at depth 0");
		} else {
			const used = childSum.get(p.i) || 0;
			if (f.d !== p.d + 1)
				problems.push("frame " + f.i + " skips a level");
			if (f.s !== p.s + used)
				problems.push("frame " + f.i + " starts at " + f.s +
					", not where its siblings end (" + (p.s + used) + ")");
			if (f.s + f.n > p.s + p.n)
				problems.push("frame " + f.i + " runs past its parent");
			childSum.set(p.i, used + f.n);
		}
		if (p && p.merged)
			problems.push("merged block " + p.i + " has children");
		// Width from the count, to the 0.01 px the document carries.
		const want = f.n / geo.total * geo.frameW;
		if (Math.abs(f.w - want) > 0.011)
			problems.push("frame " + f.i + " is " + f.w + " px wide, count says " + want.toFixed(3));
		if (f.merged) {
			mergedBlocks++;
			mergedSamples += f.n;
			const m = /^([0-9,]+) narrow frames? merged(?: \(([0-9,]+) with callees\))?$/.exec(f.label);
			if (!m) {
				problems.push("merged block " + f.i + " says " + JSON.stringify(f.label));
			} else {
				const k = +m[1].replace(/,/g, "");
				mergedFrames += k;
				mergedWithCallees += m[2] ? +m[2].replace(/,/g, "") : k;
				if (k !== +f.dataM)
					problems.push("merged block " + f.i + " says " + k +
						" frames, data-m " + f.dataM);
			}
		}
		stack.push(f);
	}
	for (const f of frames) {
		if (f.merged)
			continue;
		const own = f.n - (childSum.get(f.i) || 0);
		if (own < 0)
			problems.push("frame " + f.i + " has children wider than itself");
		self += own;
	}
	if (frames.length && self + mergedSamples !== geo.total)
		problems.push("own time " + self + " + merged " + mergedSamples +
			" != total " + geo.total);
	return {
		ok: problems.length === 0,
		problems: problems.slice(0, 20),
		selfSamples: self,
		mergedBlocks: mergedBlocks,
		mergedSamples: mergedSamples,
		mergedFrames: mergedFrames,
		mergedWithCallees: mergedWithCallees,
	};
}

function pickFrame(frames, name) {
	let best = null;
	for (const f of frames)
		if (!f.merged && f.d > 0 && (f.label === name || f.label.startsWith(name + " (")) &&
		    (!best || f.n > best.n))
			best = f;
	return best;
}

function widest(frames, pred) {
	let best = null;
	for (const f of frames)
		if (pred(f) && (!best || f.n > best.n))
			best = f;
	return best;
}

function parentOf(frames, f) {
	for (let i = f.i - 1; i >= 0; i--)
		if (frames[i].d === f.d - 1)
			return frames[i];
	return null;
}

// Attribute geometry before and after: the largest difference, and how
// many frames are still hidden or dimmed.
function compareLayout(before, after) {
	let maxDelta = 0, hidden = 0, dim = 0;
	for (let i = 0; i < before.length; i++) {
		maxDelta = Math.max(maxDelta, Math.abs(before[i].x - after[i].x),
			Math.abs(before[i].w - after[i].w));
		if (!after[i].shown)
			hidden++;
		if (dimmed(after[i]))
			dim++;
	}
	return { maxDelta: maxDelta, hidden: hidden, dimmed: dim };
}

// Highlighted by the search: class "m".
function lit(f) {
	return /(^| )m( |$)/.test(f.cls);
}

function dimmed(f) {
	return /(^| )a( |$)/.test(f.cls);
}

function brief(f) {
	return { i: f.i, d: f.d, s: f.s, n: f.n, label: f.label, title: f.title };
}

// ---- driving the page ----

function nextFrame() {
	return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

// Milliseconds from starting act() to the frame drawn after it.
async function timed(page, act) {
	const t0 = Date.now();
	await act();
	await page.evaluate(nextFrame);
	return Date.now() - t0;
}

function frameRect(page, f) {
	return page.locator("#frames > g").nth(f.i).locator("rect");
}

async function hover(page, f) {
	await frameRect(page, f).hover();
	return {
		frame: brief(f),
		details: await page.evaluate(textOf, "details"),
	};
}

// Click f and measure it against the SVG's on-screen width.
async function zoomInto(page, f, geo) {
	const ms = await timed(page, () => frameRect(page, f).click());
	const frames = await framesOf(page);
	const z = frames[f.i];
	// Its children, scaled: a child of n samples is n / z.n of the width.
	let worstChild = 0, children = 0;
	for (let i = f.i + 1; i < frames.length && frames[i].d > z.d; i++) {
		if (frames[i].d !== z.d + 1)
			continue;
		children++;
		worstChild = Math.max(worstChild,
			Math.abs(frames[i].w - frames[i].n / z.n * geo.frameW));
	}
	// Inside it: shown; its ancestors: shown across the whole width;
	// everything else: hidden.
	let outsideShown = 0, insideShown = 0, ancestors = 0, ancestorsFull = 0;
	for (const g of frames) {
		const inside = g.s >= z.s && g.s + g.n <= z.s + z.n && g.d >= z.d;
		const ancestor = g.d < z.d && g.s <= z.s && g.s + g.n >= z.s + z.n;
		if (inside && g.shown)
			insideShown++;
		if (ancestor) {
			ancestors++;
			if (g.shown && Math.abs(g.w - geo.frameW) < 0.011)
				ancestorsFull++;
		}
		if (!inside && !ancestor && g.shown)
			outsideShown++;
	}
	return {
		ms: ms,
		frame: brief(f),
		before: { boxW: f.box.w, boxX: f.box.x },
		after: { boxW: z.box.w, boxX: z.box.x, attrW: z.w, attrX: z.x },
		svgWidth: geo.svgWidth,
		widthRatio: z.box.w / geo.svgWidth,
		wantRatio: geo.frameW / geo.viewBoxWidth,
		leftPx: z.box.x - (geo.frameX / geo.viewBoxWidth) * geo.svgWidth,
		children: children,
		worstChildPx: worstChild,
		insideShown: insideShown,
		outsideShown: outsideShown,
		ancestors: ancestors,
		ancestorsFullWidth: ancestorsFull,
		unzoomShown: await page.evaluate(shownById, "unzoom"),
	};
}

async function resetZoom(page, initial) {
	const shownBefore = await page.evaluate(shownById, "unzoom");
	if (shownBefore)
		await page.locator("#unzoom").click();
	const frames = await framesOf(page);
	return Object.assign({
		controlShownBefore: shownBefore,
		controlShownAfter: await page.evaluate(shownById, "unzoom"),
	}, compareLayout(initial, frames));
}

async function search(page, term) {
	let dialog = null;
	page.once("dialog", async (d) => {
		dialog = { type: d.type(), message: d.message() };
		await d.accept(term);
	});
	const ms = await timed(page, () => page.locator("#search").click());
	const frames = await framesOf(page);
	const hits = frames.filter(lit);
	const other = frames.find((f) => !lit(f));
	const matched = await page.evaluate(textOf, "matched");
	const m = /Matched: ([0-9.]+)%/.exec(matched || "");
	return {
		ms: ms,
		term: term,
		dialog: dialog,
		control: await page.evaluate(textOf, "search"),
		highlighted: hits.map(brief),
		// The colour a person sees: CSS over the fill attribute.
		highlightFill: hits.length ? await page.evaluate(fillOf, hits[0].i) : null,
		otherFill: other ? await page.evaluate(fillOf, other.i) : null,
		matchedText: matched,
		matchedPct: m ? +m[1] : null,
	};
}

async function resetSearch(page) {
	await page.locator("#search").click();
	const frames = await framesOf(page);
	return {
		highlighted: frames.filter(lit).length,
		matchedText: await page.evaluate(textOf, "matched"),
		control: await page.evaluate(textOf, "search"),
	};
}

async function mergedCheck(page, frames, geo, initial) {
	const m = widest(frames, (f) => f.merged);
	if (!m)
		return null;
	const out = { block: brief(m), zoomedParentFirst: false };
	// Too narrow to point at: zoom into its parent first, as a person would.
	if (m.box.w < 4) {
		const p = parentOf(frames, m);
		await frameRect(page, p).click();
		out.zoomedParentFirst = true;
		out.parent = brief(p);
	}
	const now = (await framesOf(page))[m.i];
	out.hover = await hover(page, now);
	out.zoom = await zoomInto(page, now, geo);
	out.reset = await resetZoom(page, initial);
	return out;
}

async function main() {
	const opt = parseArgs(process.argv.slice(2));
	const url = pathToFileURL(path.resolve(opt.file)).href;
	const result = { file: opt.file, url: url, errors: [], requests: [] };
	let browser = null;

	try {
		browser = await chromium.launch({
			executablePath: CHROMIUM,
			headless: true,
			args: ARGS,
			timeout: TIMEOUT_MS,
		});
		const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
		page.setDefaultTimeout(TIMEOUT_MS);
		page.on("pageerror", (e) => result.errors.push("pageerror: " + e.message));
		page.on("console", (m) => {
			if (m.type() === "error" || m.type() === "warning")
				result.errors.push("console." + m.type() + ": " + m.text());
		});
		page.on("request", (r) => result.requests.push(r.url()));
		page.on("requestfailed", (r) => result.errors.push("requestfailed: " + r.url()));

		result.loadMs = await timed(page, () => page.goto(url, { waitUntil: "load" }));
		result.viewer = await page.evaluate(() => typeof window.pyspyc === "object");

		const geo = await page.evaluate(pageGeometry);
		result.geometry = geo;
		const initial = await framesOf(page);
		result.frames = initial.length;
		result.accounting = account(initial, geo);
		const root = initial.find((f) => f.d === 0);
		const target = pickFrame(initial, opt.frame);
		if (!target)
			throw new Error("no frame labelled " + JSON.stringify(opt.frame));
		result.layout = { rootY: root.y, frameY: target.y, frameD: target.d };

		if (opt.dump)
			result.boxes = initial.map((f) => [f.d, f.s, f.n, f.label, f.merged]);
		result.hover = await hover(page, target);
		result.zoom = await zoomInto(page, target, geo);
		result.zoomMs = result.zoom.ms;
		result.resetZoom = await resetZoom(page, initial);

		result.search = await search(page, opt.search);
		result.searchMs = result.search.ms;
		result.resetSearch = await resetSearch(page);

		if (opt.merged)
			result.merged = await mergedCheck(page, initial, geo, initial);
		await browser.close();
		browser = null;
	} catch (e) {
		result.fatal = String(e && e.stack ? e.stack : e);
	} finally {
		if (browser)
			await browser.close().catch(() => {});
	}
	// Exit only once the report is out: a pipe takes it in pieces.
	const text = JSON.stringify(result, null, process.stdout.isTTY ? 1 : 0) + "\n";
	process.stdout.write(text, () => process.exit(result.fatal ? 1 : 0));
}

main();
