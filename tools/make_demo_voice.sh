#!/usr/bin/env bash
# Makes the demo voice shipped in facetalk/assets/voice.wav with espeak-ng (GPL-3 program; its
# output is ours). Run once when the text changes: sudo apt-get install espeak-ng sox
set -euo pipefail
out="$(dirname "$0")/../facetalk/assets/voice.wav"
text="$(cat "$(dirname "$0")/../facetalk/assets/voice.txt")"  # the words it says (also --text's test)
espeak-ng -v en-us+f3 -s 150 -p 55 -w /tmp/facetalk_voice_raw.wav "$text"
sox /tmp/facetalk_voice_raw.wav -r 16000 -c 1 -b 16 "$out" norm -3
rm -f /tmp/facetalk_voice_raw.wav
soxi "$out"
