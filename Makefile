# The two Quickstart commands. Both install what they need (venv, control plane build).
.PHONY: demo test lint

demo:
	./hack/demo.sh

test:
	./hack/test.sh

lint:
	.venv/bin/ruff check common operator gateway cli testkit tests bench && .venv/bin/mypy && .venv/bin/lint-imports
