/**
 * Thumbnail atlas: all displayed samples' images in one uint8 buffer
 * (n, h, w, c), sent up front so hover and the inspector work while the
 * kernel is busy (a training loop).
 */

export class ThumbAtlas {
  /** bytes: Uint8Array; shape: {h, w, c} or null when the run has no images. */
  constructor(bytes, shape, n) {
    this.ok = !!(shape && bytes && bytes.length === n * shape.h * shape.w * shape.c && n > 0);
    this.bytes = bytes;
    this.h = shape ? shape.h : 0;
    this.w = shape ? shape.w : 0;
    this.c = shape ? shape.c : 0;
  }

  /** RGBA pixels (Uint8ClampedArray) of sample i (a position in the display arrays). */
  rgba(i) {
    const { h, w, c, bytes } = this;
    const out = new Uint8ClampedArray(h * w * 4);
    const base = i * h * w * c;
    for (let p = 0; p < h * w; p++) {
      const s = base + p * c;
      out[4 * p] = bytes[s];
      out[4 * p + 1] = bytes[s + (c === 3 ? 1 : 0)];
      out[4 * p + 2] = bytes[s + (c === 3 ? 2 : 0)];
      out[4 * p + 3] = 255;
    }
    return out;
  }

  /** A canvas showing sample i at its native size (CSS scales it up, pixelated). */
  canvas(i, className) {
    if (!this.ok) return null;
    const cv = document.createElement("canvas");
    cv.width = this.w;
    cv.height = this.h;
    cv.className = className;
    cv.getContext("2d").putImageData(new ImageData(this.rgba(i), this.w, this.h), 0, 0);
    return cv;
  }
}
