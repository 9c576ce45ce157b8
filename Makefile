# cscopilot: PGXS build.  `make`, `make install`, `make test`, `make demo`.
EXTENSION   = cscopilot
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" cscopilot.control)

MODULE_big  = cscopilot
OBJS        = src/cscopilot.o src/features.o src/worker.o

# The install script is assembled from one file per concern, in name order.
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*--*.sql))

PG_CPPFLAGS = -std=gnu11 -Wall -Wmissing-prototypes
SHLIB_LINK  = -lxgboost -ljansson -lm

EXTRA_CLEAN = $(DATA_built) results regression.diffs regression.out tmp_check tmp_install

# No LLVM bitcode: a fresh machine may lack the clang that the server was built with.
with_llvm   = no

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# A fresh machine has no server headers, libxgboost or jansson: install them
# first, then run the same goals again with everything in place.
DEPS_HEADERS = /usr/include/xgboost/c_api.h /usr/include/jansson.h
ifeq ($(and $(PGXS),$(wildcard $(PGXS)),$(wildcard $(DEPS_HEADERS))),)
.DEFAULT_GOAL := all
Makefile: ;
%:
	@bash contrib/install-deps.sh
	@$(MAKE) --no-print-directory $@
all:
	@bash contrib/install-deps.sh
	@$(MAKE) --no-print-directory all
else
include $(PGXS)

$(DATA_built): $(SQL_PARTS) cscopilot.control
	@echo "-- cscopilot $(EXTVERSION): generated from src/sql/*.sql by make; do not edit" > $@
	@for f in $(SQL_PARTS); do printf '\n-- source: %s\n' "$$f" >> $@; cat "$$f" >> $@; done

.PHONY: deps test demo bench demo-stop
deps:
	@bash contrib/install-deps.sh

# The whole suite (pg_regress, then TAP) in a temporary instance; ends with "N passed, M failed".
test: deps all
	@bash contrib/run-tests.sh

demo: deps all
	@bash contrib/demo.sh start

demo-stop:
	@bash contrib/demo.sh stop
endif
