# Two commands for users: `make demo` and `make test`. Both create/refresh .venv first
# (tools/setup_env.sh is idempotent: a second run takes well under a second).
PY := .venv/bin/python
# progress bars print UTF-8 whatever the locale of the calling shell
export PYTHONUTF8 := 1

.PHONY: setup demo test data clean-venv

setup:
	@bash tools/setup_env.sh

data: setup
	@$(PY) tools/fetch_sample_data.py

# Until a trained default checkpoint ships (checkpoints/sam_default.pth), the demo runs the
# whole matching pipeline with a randomly initialised tiny SAM and says so loudly.
demo: data
	@if [ -f checkpoints/sam_default.pth ]; then \
	  $(PY) tools/demo.py; \
	else \
	  echo "[demo] NOTE: no trained checkpoint ships yet (checkpoints/sam_default.pth)."; \
	  echo "[demo] Running the real pipeline (load, 2 mm resample, embed, match, figure) with a"; \
	  echo "[demo] RANDOMLY INITIALISED tiny SAM: timings are real, the match is not meaningful."; \
	  echo "[demo] Train a model (docs/en/user_guides/train.md) and run: python tools/demo.py --checkpoint K"; \
	  $(PY) tools/demo.py --random-init --config configs/_base_/models/sam_tiny.py; \
	fi

test: data
	@$(PY) -m pytest tests -q -p no:cacheprovider

clean-venv:
	rm -rf .venv
