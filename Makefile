# Quick start targets (see README.md). PY picks the interpreter (python3: an activated venv's or conda's);
# DEMO_ARGS / APP_ARGS add options to `ngp train` / `ngp app` (CI: a short run); everything else is in scripts/.
PY ?= python3
export PY
DEMO_ARGS ?=
APP_ARGS ?=

.PHONY: setup demo test app
setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m ngp_app train scenes/demo --out runs/demo --eval $(DEMO_ARGS)

app: setup
	$(PY) -m ngp_app app $(APP_ARGS)

test: setup
	bash scripts/test.sh
