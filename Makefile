# Tally — build, run, test.  `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
CARGO ?= cargo

# What building needs: nasm (openh264's fast paths; without it the build is
# silently ~3x slower), libclang (bindgen), ALSA headers (cpal), pkg-config.
BUILD_PKGS := nasm libclang-dev libasound2-dev pkg-config build-essential
# What the tests drive: real peers and a headless display.
TEST_PKGS := nginx libnginx-mod-rtmp ffmpeg xvfb xauth x11-utils libgl1-mesa-dri libegl1 mesa-vulkan-drivers \
	pulseaudio pulseaudio-utils libasound2-plugins \
	rtmpdump gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	vlc-bin vlc-plugin-base mpv chromium stunnel4 openssl imagemagick xdotool \
	dbus-daemon dbus-bin gnome-keyring

.PHONY: all deps test-deps run build test bench fuzz plot soak clean

all: build

deps:
	@./scripts/ensure-packages.sh $(BUILD_PKGS)

test-deps: deps
	@./scripts/ensure-packages.sh $(TEST_PKGS)
	@# Node drives the browser test; Debian's only when none is installed.
	@command -v node >/dev/null && command -v npm >/dev/null || ./scripts/ensure-packages.sh nodejs npm
	@# mpegts.js and playwright-core for the HTTP-FLV browser test (pinned by package-lock.json).
	@[ -f tests/web/node_modules/mpegts.js/dist/mpegts.js ] && [ -d tests/web/node_modules/playwright-core ] || \
	    (cd tests/web && npm ci --no-audit --no-fund)
	@# Debian starts the packaged nginx on :80; tests run private instances
	@# and need nothing from it.
	@if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then \
	    systemctl stop nginx || true; fi

build: deps
	$(CARGO) build --release --locked

run: build
	./target/release/tally

# Every test: unit, property, integration against real peers, doc tests.
test: test-deps
	$(CARGO) build --locked --workspace --all-targets
	$(CARGO) test --locked --workspace --all-targets --no-fail-fast
	$(CARGO) test --locked --workspace --doc

# Every benchmark but the 30-minute soak (`make soak`).
BENCHES := rtmp_chunk amf0 flv_mux convert audio_path fanout late_join recovery preview
bench: test-deps
	$(CARGO) bench --locked $(addprefix --bench ,$(BENCHES))
	./benches/compare.sh
	./benches/live_cpu.sh

# Re-runs the recovery benchmark (faults and congestion) and plots its last
# congestion run: docs/congestion.csv -> docs/congestion.png.
plot: test-deps
	@./scripts/ensure-packages.sh gnuplot-nox
	TALLY_CONGESTION_CSV=$(CURDIR)/docs/congestion.csv $(CARGO) bench --locked --bench recovery
	gnuplot docs/congestion.gp

# The soak: 30 minutes live to nginx-rtmp and tally serve with 20 players and
# a fault every 3 minutes (SOAK_SECS, FAULT_EVERY, SOAK_PLAYERS change it);
# prints the summary for docs/PERFORMANCE.md and plots docs/soak.csv ->
# docs/soak.png.
soak: test-deps
	@./scripts/ensure-packages.sh gnuplot-nox
	SOAK_CSV=$(CURDIR)/docs/soak.csv $(CARGO) bench --locked --bench soak
	gnuplot docs/soak.gp

fuzz: deps
	./fuzz/run.sh

clean:
	$(CARGO) clean
