# cscopilot: PGXS build.  `make`, `make install`, `make test`, `make demo`.
EXTENSION   = cscopilot
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" cscopilot.control)

MODULE_big  = cscopilot
OBJS        = src/cscopilot.o src/features.o src/health.o src/alerts.o src/text.o \
              src/model.o src/modelcache.o src/modelparse.o src/modeleval.o src/explain.o src/train.o \
              src/demo.o src/worker.o src/lifecycle.o src/ingest.o

# The install script is assembled from one file per concern, in name order.
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
# Upgrade scripts: src/upgrade/<script> followed by src/sql/95_security.sql,
# which re-applies privileges, row-level security and dump registrations to
# every object, old and new.  Released install scripts stay at the top level.
UPGRADES    = $(notdir $(wildcard src/upgrade/$(EXTENSION)--*--*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(UPGRADES)
DATA        = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*.sql))

PG_CPPFLAGS = -std=gnu11 -Wall -Wmissing-prototypes
SHLIB_LINK  = -lxgboost -ljansson -lm

EXTRA_CLEAN = $(DATA_built) results regression.diffs regression.out tmp_check tmp_install test/fuzz/build .asan

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# A fresh machine has no server headers, libxgboost or jansson: install them
# first, then run the same goals again with everything in place.
DEPS_HEADERS = /usr/include/xgboost/c_api.h /usr/include/jansson.h $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)/postgres.h
DEPS_MISSING = $(filter-out $(wildcard $(DEPS_HEADERS)),$(DEPS_HEADERS))
ifeq ($(and $(PGXS),$(wildcard $(PGXS)),$(if $(DEPS_MISSING),,ok)),)
.DEFAULT_GOAL := all
# The documented goals are phony here: a file or directory of the same name
# (test/ is one) must not make them "up to date" before anything is installed.
FRESH_GOALS = all install installcheck test demo demo-stop bench bench-text model fuzz asan leakcheck clean deps
.PHONY: $(FRESH_GOALS)
Makefile: ;
ifdef CSCOPILOT_DEPS_TRIED
$(FRESH_GOALS):
	$(error still missing after contrib/install-deps.sh: $(or $(DEPS_MISSING),the PGXS makefile of $(PG_CONFIG)))
else
$(FRESH_GOALS):
	@bash contrib/install-deps.sh
	@$(MAKE) --no-print-directory CSCOPILOT_DEPS_TRIED=1 $@
%:
	@bash contrib/install-deps.sh
	@$(MAKE) --no-print-directory CSCOPILOT_DEPS_TRIED=1 $@
endif
else
include $(PGXS)

# No LLVM bitcode: a fresh machine may lack the clang that the server was built with.
with_llvm = no

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) cscopilot.control
	@echo "-- cscopilot $(EXTVERSION): generated from src/sql/*.sql by make; do not edit" > $@
	@for f in $(SQL_PARTS); do printf '\n-- source: %s\n' "$$f" >> $@; cat "$$f" >> $@; done

# A line "--@include src/sql/<file>.sql" of an upgrade source stands for that file.
$(UPGRADES): %.sql: src/upgrade/%.sql src/sql/95_security.sql $(SQL_PARTS)
	@echo "-- $@: generated from src/upgrade/$@ and src/sql/95_security.sql by make; do not edit" > $@
	@for f in src/upgrade/$@ src/sql/95_security.sql; do \
		printf '\n-- source: %s\n' "$$f" >> $@; \
		awk '/^--@include / { f = $$2; n = 0; while ((r = (getline line < f)) > 0) { print line; n++ } \
			if (r < 0 || n == 0) { print "cannot include " f > "/dev/stderr"; exit 1 } close(f); next } { print }' \
			"$$f" >> $@ || { rm -f $@; exit 1; }; \
	done

# PGXS tracks no header dependencies: spell out the shared ones.
src/model.o src/modelcache.o src/explain.o src/train.o src/lifecycle.o: src/model.h src/modelcore.h
src/modelparse.o src/modeleval.o: src/modelcore.h
$(filter-out src/modelparse.o src/modeleval.o,$(OBJS)): src/cscopilot.h

# Shipped models, loadable with cs.load_model_file().
MODELS      = $(wildcard models/*.json models/*.metrics models/*.tsv models/VADER-*)
install: install-models
install-models:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/$(EXTENSION)/models'
	$(if $(MODELS),$(INSTALL_DATA) $(MODELS) '$(DESTDIR)$(datadir)/$(EXTENSION)/models/')

.PHONY: deps test demo bench bench-text demo-stop install-models model fuzz asan leakcheck
deps:
	@bash contrib/install-deps.sh

# The whole suite (pg_regress, then TAP) in a temporary instance; ends with "N passed, M failed".
test: deps all
	@bash contrib/run-tests.sh

demo: deps all
	@bash contrib/demo.sh start

demo-stop:
	@bash contrib/demo.sh stop

# Retrains models/churn_default.json on generated demo data (models/README.md).
model: deps all
	@bash contrib/train-default-model.sh

# Text signals alone: evaluation set accuracy and throughput, on a private installation.
bench-text: deps all
	@bash contrib/bench/text.sh

# libFuzzer over the model parsers, FUZZ_SECONDS (default 60) per target.
fuzz: deps
	@bash contrib/install-deps.sh --fuzz
	@bash test/fuzz/run.sh

# The pg_regress suite against an AddressSanitizer/UBSan build; fails on any report.
asan: deps
	@bash contrib/install-deps.sh --fuzz
	@bash contrib/asan.sh

# RSS of one backend over LEAK_CALLS (default 1,000,000) cs.predict calls.
leakcheck: deps all
	@bash contrib/leakcheck.sh

# Figures and ratios against baselines measured in the same run; writes BENCHMARKS.md.
bench: deps all
	@bash contrib/install-deps.sh --bench
	@bash contrib/bench/bench.sh
endif
