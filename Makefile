.PHONY: run test lint bench clean

run:  ## install, migrate, seed demo data, build and serve on $PORT (default 3000)
	@scripts/run.sh

test:  ## install what tests need, lint, run every test (unit, service, API, state, browser)
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh && . scripts/env.sh && ruff check . && ruff format --check .

bench:  ## run every benchmark under bench/ (each prints a JSON line)
	@scripts/bootstrap.sh && . scripts/env.sh && for b in bench/[!_]*.py; do echo "== $$b"; PYTHONPATH=. python "$$b" || exit 1; done

clean:
	rm -rf .web data .pytest_cache tests/e2e/screenshots
