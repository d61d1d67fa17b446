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

# Match a point of one sample CT in the other with the shipped SAM (checkpoints/sam_default.pth)
# and write a three-plane figure to outputs/.
demo: data
	@$(PY) tools/demo.py

test: data
	@$(PY) -m pytest tests -q -p no:cacheprovider

clean-venv:
	rm -rf .venv
