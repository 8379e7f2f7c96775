/**
 * The faithfulness figures explained: what each one means, what counts as
 * good or poor, what this kind of map usually reaches, and what to distrust
 * when figures disagree. Pure data and functions (tested in node); panels.js
 * draws them.
 */

/**
 * One row per figure: key, label, one-line meaning, scale [poorBelow, goodFrom]
 * (or with lowerIsBetter [goodUpTo, poorAbove]; null: no scale), and what to
 * compare with. Reference figures: README / benchmarks/README.md (MNIST, this
 * engine and umap-learn).
 */
const metric = (key, label, meaning, scale = null, reference = "", lowerIsBetter = false) =>
  ({ key, label, meaning, scale, reference, lowerIsBetter });
const MODEL_ONLY = "(about the model, not the map)";

export const METRICS = [
  metric("nn_rate@15", "neighbours kept", "share of each sample's 15 nearest neighbours (model features) that are also near it on the map",
    [0.15, 0.3], "umap-learn reaches about 0.31 on MNIST; 1.0 is perfect"),
  metric("boundary_nn_rate@15", "boundary neighbours", "the same, with neighbours among the boundary samples: how well the map places boundaries",
    [0.1, 0.25], "1.0 is perfect"),
  metric("ppr", "predictions kept (ppr)", "share of samples whose map position, decoded back, still gets the class the model predicts for them",
    [0.9, 0.97], "this engine: 0.96-0.99 on MNIST; DVI's own code about 0.82"),
  metric("map_consistency", "map consistency", "share of samples drawn on a background pixel of their predicted class",
    [0.85, 0.95], "1.0: every point sits in its class's region"),
  metric("trustworthiness@15", "trustworthiness", "whether neighbours on the map are neighbours in the model (1 = no false neighbours)",
    [0.8, 0.9], "0.9 and above is usual for UMAP-like maps"),
  metric("inv_conf_diff", "confidence change", "mean change of the predicted class's probability after projecting and decoding (lower is better)",
    [0.05, 0.15], "0 is perfect", true),
  metric("accuracy/train", "train accuracy", `the classifier's accuracy on the recorded training samples ${MODEL_ONLY}`),
  metric("accuracy/test", "test accuracy", `the classifier's accuracy on the recorded test samples ${MODEL_ONLY}`),
];

/** "good" | "fair" | "poor" for a figure, or null when it has no scale or no value. */
export function assess(metric, value) {
  if (!metric.scale || typeof value !== "number" || !Number.isFinite(value)) return null;
  const [a, b] = metric.scale;
  if (metric.lowerIsBetter) return value <= a ? "good" : value <= b ? "fair" : "poor";
  return value >= b ? "good" : value >= a ? "fair" : "poor";
}

/** {min, max, count} of `key` over epochs' metrics (objects), or null when no epoch has it. */
export function runRange(metricsList, key) {
  let min = Infinity, max = -Infinity, count = 0;
  for (const m of metricsList) {
    const v = m ? m[key] : undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    min = Math.min(min, v);
    max = Math.max(max, v);
    count++;
  }
  return count ? { min, max, count } : null;
}

/** Plain-language warnings for this epoch's figures: what the user should distrust. */
export function warnings(m) {
  const out = [];
  if (!m) return out;
  const nn = m["nn_rate@15"], ppr = m.ppr;
  if (typeof nn === "number" && nn < 0.2 && typeof ppr === "number" && ppr >= 0.9) {
    out.push(
      `Neighbours kept is low (${nn.toFixed(2)}) while predictions kept is high (${ppr.toFixed(2)}): ` +
        "trust the class regions and boundaries, not distances or neighbours within a cluster.",
    );
  } else if (typeof nn === "number" && nn < 0.15) {
    out.push(`Neighbours kept is low (${nn.toFixed(2)}): points close on the map are often not close for the model.`);
  }
  if (typeof ppr === "number" && ppr < 0.9) {
    out.push(`Predictions kept is ${ppr.toFixed(2)}: the background is wrong under ${Math.round((1 - ppr) * 100)}% of samples.`);
  }
  const mc = m.map_consistency;
  if (typeof mc === "number" && mc < 0.85) {
    out.push(`Map consistency is ${mc.toFixed(2)}: many points sit on another class's colour.`);
  }
  return out;
}
