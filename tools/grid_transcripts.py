"""Write the sentence of every GRID clip in a folder as `<clip name>.txt`, for `facetalk eval --transcripts`.

GRID's file names spell their sentence, one letter a word (Cooke et al. 2006): `bbaf2n` is "bin
blue at f two now" (command, colour, preposition, letter, digit, adverb). Clips are recognised by
`_grid_` in the name, the six-letter code after it.

    .venv/bin/python tools/grid_transcripts.py ../shared/eval/video_real /tmp/grid_text
    .venv/bin/facetalk eval --videos ../shared/eval/video_real --transcripts /tmp/grid_text --out /tmp/ev_text
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

COMMAND = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
COLOUR = {"b": "blue", "g": "green", "r": "red", "w": "white"}
PREPOSITION = {"a": "at", "b": "by", "i": "in", "w": "with"}
DIGIT = {str(i): w for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                          "nine"))}
ADVERB = {"a": "again", "n": "now", "p": "please", "s": "soon"}


def sentence(code: str) -> str:
    """GRID's six-letter code -> its sentence ("bbaf2n" -> "bin blue at f two now")."""
    c, o, p, letter, d, a = code.lower()
    return " ".join((COMMAND[c], COLOUR[o], PREPOSITION[p], letter, DIGIT[d], ADVERB[a]))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: grid_transcripts.py VIDEOS_DIR OUT_DIR", file=sys.stderr)
        return 2
    videos, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(videos.iterdir()):
        m = re.search(r"_grid_([a-z]{4}\d[a-z])", path.stem)
        if m:
            (out / f"{path.stem}.txt").write_text(sentence(m.group(1)) + "\n", encoding="utf-8")
            print(f"{path.stem}: {sentence(m.group(1))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
