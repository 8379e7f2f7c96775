/**
 * Colour mapping: class colours and per-point colours for the three
 * colouring modes, packed as 32-bit RGBA words ready for an ImageData buffer
 * (little-endian: the word is 0xAABBGGRR).
 */

import { STYLE } from "./style.js";

// "correct?" colouring: Okabe-Ito blue (prediction equals label) and orange
// (misclassified), told apart with red-green colour blindness (style.json colors).
export const CORRECT_RGB = parseHex(STYLE.colors.correct);
export const WRONG_RGB = parseHex(STYLE.colors.wrong);

/** "#1f77b4" -> [31, 119, 180]. */
export function parseHex(hex) {
  const s = hex.replace("#", "");
  if (!/^[0-9a-fA-F]{6}$/.test(s)) throw new Error(`bad colour ${hex}`);
  return [0, 2, 4].map((i) => parseInt(s.slice(i, i + 2), 16));
}

/** Pack r, g, b, a (0-255) into one ImageData word. */
export function pack(r, g, b, a = 255) {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** Unpack a word into [r, g, b, a]. */
export function unpack(word) {
  return [word & 255, (word >>> 8) & 255, (word >>> 16) & 255, word >>> 24];
}

/** Darker shade (for point outlines), factor in [0, 1]. */
export function shade([r, g, b], factor) {
  return [Math.round(r * factor), Math.round(g * factor), Math.round(b * factor)];
}

/**
 * Per-point colour words.
 * mode: "label" | "prediction" | "correct"; classRGB: array of [r,g,b];
 * labels, predictions: typed arrays of class indices (predictions may be null
 * before any epoch, then "prediction"/"correct" fall back to labels).
 */
export function pointColors(mode, classRGB, labels, predictions, out = null) {
  const n = labels.length;
  const words = out && out.length === n ? out : new Uint32Array(n);
  const table = classRGB.map(([r, g, b]) => pack(r, g, b));
  const right = pack(...CORRECT_RGB);
  const wrong = pack(...WRONG_RGB);
  // one loop per mode (the mode test inside the loop cost a third of it at 1,000,000 points)
  if (mode === "prediction" && predictions) for (let i = 0; i < n; i++) words[i] = table[predictions[i]];
  else if (mode === "correct" && predictions) for (let i = 0; i < n; i++) words[i] = predictions[i] === labels[i] ? right : wrong;
  else for (let i = 0; i < n; i++) words[i] = table[labels[i]];
  return words;
}

/** Same colour with another alpha (used to dim unselected points). */
export function withAlpha(word, alpha) {
  return ((word & 0x00ffffff) | (alpha << 24)) >>> 0;
}
