# The two commands of the README: `make demo` (set up everything, render the demo) and `make test`.
# Set-up needs only Python 3.10+ and the package index: every codec and model ships in a wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.facetalk-installed

.PHONY: setup browser demo test bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,eval,pipecat,livekit]"
	# MediaPipe 0.10.21 is the last release that ships its face models; its declared dependencies
	# would add jax and the GUI OpenCV build, so it goes in alone (see ../shared/FACTS.md).
	$(PY) -m pip install -q --no-deps "mediapipe==0.10.21"
	$(PY) -c "import mediapipe, cv2, av, numba, dlib; print('facetalk environment ready')"
	touch $(STAMP)

setup: $(STAMP) browser

# Debian's Chromium for tests/test_browser.py, where apt can be used; never fails (the test skips).
browser:
	@bash tools/install_chromium.sh

demo: setup
	$(VENV)/bin/facetalk demo -o facetalk_demo.mp4

test: setup
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/facetalk bench

# The evaluation over the shared real clips (see README): a report in eval_report/, generated from
# the sound alone, the GRID clips' sentences (their file names spell them) checking their M, B and P.
EVAL_VIDEOS ?= ../shared/eval/video_real
eval: setup
	$(PY) tools/grid_transcripts.py $(EVAL_VIDEOS) eval_report/grid_words
	$(VENV)/bin/facetalk eval --videos $(EVAL_VIDEOS) --transcripts eval_report/grid_words --from-sound --out eval_report

clean:
	rm -rf $(VENV) facetalk_demo.mp4 eval_report .pytest_cache
