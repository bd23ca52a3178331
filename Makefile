# Thin driver over meson/ninja. Every target first makes sure the Debian
# packages are present (scripts/deps.sh is silent when they are).
BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_SECONDS ?= 60
MESON_SETUP = meson setup --wipe
.PHONY: all deps build test start demo bench fuzz clean

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja: | deps
	@meson setup $(BUILD) --buildtype=release -Dwerror=true >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)
	@echo "built: $$(find $(BUILD)/bin -maxdepth 1 -type f -perm -u+x -printf "%f ")"

# Tests: clang, ASan + UBSan, -Werror, fuzz targets built for corpus replay.
$(TEST_BUILD)/build.ninja: | deps
	@CC=clang meson setup $(TEST_BUILD) --buildtype=debug -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true >/dev/null

test: deps $(TEST_BUILD)/build.ninja
	@./scripts/run-tests.sh $(TEST_BUILD)

# Runs the platform in the foreground until Ctrl-C (scripts/start.sh).
start: build
	@./scripts/start.sh $(BUILD)

# The two-party example of docs/quickstart.md against a running `make start`.
demo: build
	@./scripts/demo.sh $(BUILD)

bench: build
	@./bench/run.sh $(BUILD)

fuzz: deps $(TEST_BUILD)/build.ninja
	@./scripts/fuzz.sh $(TEST_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
