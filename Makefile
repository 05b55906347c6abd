# The two commands of the README:
#   make reproduce   every notebook through papermill (profile: paper with CUDA, mini otherwise; PROFILE=… to choose)
#   make test        unit tests + every notebook executed in the smoke profile under nbval
# Both set everything up first (scripts/setup.sh is idempotent).

VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?=

.PHONY: setup test unit notebooks reproduce reproduce-beyond refresh-notebooks clean-notebooks check-notebooks bench

setup:
	@bash scripts/setup.sh

test:
	@bash scripts/setup.sh --browser
	CI=1 $(PY) -m pytest -q -p no:cacheprovider tests --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg notebooks
	$(PY) scripts/clean_notebooks.py --check notebooks

unit: setup
	$(PY) -m pytest -q tests

reproduce: setup
	$(PY) -m mtlnb reproduce $(if $(PROFILE),--profile $(PROFILE),)

refresh-notebooks: setup  # the committed outputs: every notebook in mini, then copied over notebooks/ (about 2 h)
	$(PY) -m mtlnb reproduce --profile $(or $(PROFILE),mini) --refresh-notebooks
	$(PY) -m mtlnb reproduce --profile $(or $(PROFILE),mini) --only 09 --refresh-notebooks

clean-notebooks: setup
	$(PY) scripts/clean_notebooks.py notebooks

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

reproduce-beyond: setup  # notebook 09, the thesis's future work (not part of `make reproduce`)
	$(PY) -m mtlnb reproduce --only 09 $(if $(PROFILE),--profile $(PROFILE),)
