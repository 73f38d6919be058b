// Microphone -> 16 kHz mono int16 chunks for the live WebSocket.
// Runs on the audio thread: low-pass (two one-pole stages at ~6.5 kHz, against aliasing), then
// linear interpolation from the context's rate (usually 48 kHz) down to 16 kHz. Every `chunk`
// output samples (320 = 20 ms) are posted to the page as a transferable ArrayBuffer.

const RATE = 16000;
const CUTOFF_HZ = 6500;

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = (options.processorOptions && options.processorOptions.chunk) || 320;
    this.step = sampleRate / RATE; // input samples per output sample
    this.alpha = 1 - Math.exp((-2 * Math.PI * CUTOFF_HZ) / sampleRate);
    this.lp1 = 0;
    this.lp2 = 0;
    this.prev = 0;
    this.t = 0; // position of the next output sample after `prev`, in input samples
    this.out = new Int16Array(this.chunk);
    this.n = 0;
  }

  emit(value) {
    const v = Math.max(-1, Math.min(1, value));
    this.out[this.n++] = Math.round(v * 32767);
    if (this.n === this.chunk) {
      this.port.postMessage(this.out.buffer, [this.out.buffer]);
      this.out = new Int16Array(this.chunk);
      this.n = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.lp1 += this.alpha * (channel[i] - this.lp1);
      this.lp2 += this.alpha * (this.lp1 - this.lp2);
      const y = this.step > 1 ? this.lp2 : channel[i];
      while (this.t <= 1) {
        this.emit(this.prev + (y - this.prev) * this.t);
        this.t += this.step;
      }
      this.t -= 1;
      this.prev = y;
    }
    return true;
  }
}

registerProcessor("pcm16k", Pcm16kProcessor);
