# Quick start targets (see README.md). PY picks the interpreter; everything else is in scripts/.
PY ?= python3
export PY

.PHONY: setup demo test app
setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m ngp_app train scenes/demo --out runs/demo --eval

app: setup
	bash scripts/setup.sh app
	$(PY) -m ngp_app app

test: setup
	bash scripts/test.sh
