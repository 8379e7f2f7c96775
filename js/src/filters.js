/**
 * Filters: which points are shown. Pure so it can be tested and reused by the
 * renderer, the lasso (only visible points are selectable) and the legend.
 */

/**
 * Visibility mask (Uint8Array, 1 = shown).
 * opts: { split: "both"|"train"|"test", hidden: Set of class ids,
 *         onlyMisclassified, onlyFlipped }
 * data: { labels, isTest (Uint8Array 1 = test), predictions (current epoch or null),
 *         previous (previous epoch's predictions or null) }
 */
export function visibilityMask(data, opts, out = null) {
  const { labels, isTest, predictions, previous } = data;
  const n = labels.length;
  const mask = out && out.length === n ? out : new Uint8Array(n);
  const wantTest = opts.split === "test", wantTrain = opts.split === "train";
  const hidden = opts.hidden || new Set();
  if (!wantTest && !wantTrain && !hidden.size && !opts.onlyMisclassified && !opts.onlyFlipped) return mask.fill(1);
  for (let i = 0; i < n; i++) {
    let ok = true;
    if (wantTest && !isTest[i]) ok = false;
    else if (wantTrain && isTest[i]) ok = false;
    else if (hidden.size && hidden.has(labels[i])) ok = false;
    else if (opts.onlyMisclassified && (!predictions || predictions[i] === labels[i])) ok = false;
    else if (opts.onlyFlipped && (!predictions || !previous || predictions[i] === previous[i])) ok = false;
    mask[i] = ok ? 1 : 0;
  }
  return mask;
}

/** Count of points per class among those passing the split filter (legend counts). */
export function classCounts(labels, isTest, split, nClasses) {
  const counts = new Array(nClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    if (split === "test" && !isTest[i]) continue;
    if (split === "train" && isTest[i]) continue;
    counts[labels[i]]++;
  }
  return counts;
}

/**
 * A sample's history over epochs: prediction, probability of its label, and
 * the epochs where its prediction changed from the previous epoch.
 */
export function sampleHistory(epochs, i) {
  const rows = [];
  let prev = null;
  for (const e of epochs) {
    const pred = e.predictions[i];
    rows.push({ epoch: e.epoch, prediction: pred, labelProb: e.labelProb[i], flipped: prev !== null && pred !== prev, from: prev });
    prev = pred;
  }
  return rows;
}
