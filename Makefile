# The two set-up commands of the README: `make demo` and `make test`. Both build .venv from nothing.
PY ?= python3.11
VENV := .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export praw_check_for_updates := False
export NO_PROXY := 127.0.0.1,localhost
export no_proxy := 127.0.0.1,localhost

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[test]'
	$(VENV)/bin/mentionwatch warm
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/mentionwatch demo

# Four workers on any machine: most tests wait on sockets and subprocesses, not the CPU.
test: install
	$(VENV)/bin/python -m pytest -n 4

.PHONY: install demo test
