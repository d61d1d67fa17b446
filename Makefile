# Two commands for users: `make demo` and `make test`. Both create/refresh .venv first
# (tools/setup_env.sh is idempotent: a second run takes well under a second).
PY := .venv/bin/python

.PHONY: setup demo test data clean-venv

setup:
	@bash tools/setup_env.sh

data: setup
	@$(PY) tools/fetch_sample_data.py

demo: data
	@$(PY) tools/demo.py

test: data
	@$(PY) -m pytest tests -q -p no:cacheprovider

clean-venv:
	rm -rf .venv
