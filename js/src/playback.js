/**
 * Playback: which epoch is shown, and the glide between two epochs. No DOM
 * and no clock of its own (callers pass `now` in ms), so it is tested in node.
 *
 * State: `current` (the epoch number at rest), `transition` ({from, to, start,
 * duration}, epoch numbers), `playing`, `speed` (epochs per second), `pending`
 * (an epoch asked for before its data arrived).
 */
import { transitionProgress } from "./interp.js";
import { STYLE } from "./style.js";

export const SPEEDS = STYLE.playback.speeds;
export const STEP_MS = STYLE.playback.step_ms;

export class Playback {
  /**
   * numbers(): the loaded epoch numbers, ascending. onChange(kind): "epoch" when
   * the epoch at rest changed, "playing" when play/pause toggled, "glide" when a glide starts.
   */
  constructor(numbers, onChange = () => {}) {
    this.numbers = numbers;
    this.onChange = onChange;
    this.current = null;
    this.transition = null;
    this.playing = false;
    this.speed = 1;
    this.pending = null;
  }

  has(num) {
    return this.numbers().includes(num);
  }

  /** The epoch being shown or glided to. */
  target() {
    return this.transition ? this.transition.to : this.current;
  }

  /** Show epoch `num` at once; remembered as pending while its data is not loaded. */
  jumpTo(num) {
    if (!this.has(num)) {
      this.pending = num;
      return false;
    }
    this.transition = null;
    this.pending = null;
    const changed = num !== this.current;
    this.current = num;
    if (changed) this.onChange("epoch");
    return true;
  }

  /** Seek to the k-th loaded epoch (the slider's position): stops playback, then jumps. */
  seekIndex(k) {
    const nums = this.numbers();
    const num = nums[Math.max(0, Math.min(nums.length - 1, Math.round(k)))];
    if (num == null) return false;
    this.pause();
    return this.jumpTo(num);
  }

  /** Glide to epoch `num` over `duration` ms from time `now`. */
  glideTo(num, duration, now) {
    if (!this.has(num)) return false;
    if (this.current == null || this.current === num) return this.jumpTo(num);
    this.transition = { from: this.current, to: num, start: now, duration };
    this.onChange("glide");
    return true;
  }

  /** One epoch forward (+1) or back (-1) from the target, as a short glide. */
  step(delta, now) {
    const nums = this.numbers();
    const k = nums.indexOf(this.target()) + delta;
    if (k < 0 || k >= nums.length) return false;
    return this.glideTo(nums[k], STEP_MS, now);
  }

  play(now) {
    const nums = this.numbers();
    if (nums.length < 2) return;
    if (this.current === nums[nums.length - 1] && !this.transition) this.jumpTo(nums[0]);
    this.playing = true;
    this.onChange("playing");
    if (!this.transition) this._next(now);
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.onChange("playing");
  }

  toggle(now) {
    this.playing ? this.pause() : this.play(now);
  }

  _next(now) {
    const nums = this.numbers();
    const k = nums.indexOf(this.current);
    if (!this.playing) return;
    if (k < 0 || k + 1 >= nums.length) return this.pause();
    this.glideTo(nums[k + 1], 1000 / this.speed, now);
  }

  /**
   * Where the picture stands at time `now`: {from, to, t} (epoch numbers, eased
   * fraction); finishes a glide that is over (and starts the next while playing).
   */
  advance(now) {
    const tr = this.transition;
    if (!tr) return { from: this.current, to: this.current, t: 1, moving: false };
    const { t, done } = transitionProgress(now - tr.start, tr.duration);
    if (!done) return { from: tr.from, to: tr.to, t, moving: true };
    this.transition = null;
    this.current = tr.to;
    this.onChange("epoch");
    if (this.playing) this._next(now);
    return { from: tr.to, to: tr.to, t: 1, moving: !!this.transition };
  }
}
