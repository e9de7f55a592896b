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
	vlc-bin vlc-plugin-base mpv chromium stunnel4 openssl imagemagick xdotool x11-xserver-utils \
	dbus-daemon dbus-bin gnome-keyring libsecret-tools

# What `make package` needs besides the build: dpkg-shlibdeps (dependencies
# computed) and the validators `make test` runs on the package.
PKG_PKGS := dpkg-dev desktop-file-utils appstream lintian
# What the .deb depends on at run time: installed before the install test,
# so that it finds them satisfied without reaching the network.
RUNTIME_PKGS := libegl1 libgl1 libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon0 libxkbcommon-x11-0
CARGO_DEB_VERSION := 3.8.0
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB := target/debian/tally_$(VERSION)-1_$(shell dpkg --print-architecture).deb

.PHONY: all deps test-deps stage-deps package-deps run build stage lint test package package-check dist portable bench fuzz plot plot-renditions soak clean

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

# What packaging/stage.sh needs: the SVG renderer for the icons.
stage-deps: deps
	@./scripts/ensure-packages.sh librsvg2-bin

package-deps: stage-deps
	@./scripts/ensure-packages.sh $(PKG_PKGS)
	@$(CARGO) deb --version 2>/dev/null | grep -qF ' $(CARGO_DEB_VERSION)' || \
	    $(CARGO) install cargo-deb --version $(CARGO_DEB_VERSION) --locked

# What the package and the tarball ship besides the binary, generated into
# target/packaging/ (once per make run, for both).
stage: build stage-deps
	./packaging/stage.sh target/release/tally

# The Debian package, from the release build: target/debian/tally_*.deb.
package: package-deps stage
	rm -f target/debian/tally_*.deb
	$(CARGO) deb --no-build --output $(DEB)

# The release tarball for other Linux distributions: target/dist/tally-*.tar.gz.
dist: stage
	./packaging/dist.sh

# The package validated and installed into a throwaway root (packaging/check.sh);
# the installed app's screenshot goes to target/packaging/installed-app.png.
# Then the tarball, installed into a fresh prefix and removed.
package-check: package dist
	@./scripts/ensure-packages.sh $(RUNTIME_PKGS) xvfb xauth x11-utils imagemagick
	./packaging/check.sh $(DEB) target/packaging/installed-app.png
	./packaging/check-dist.sh target/dist/tally-$(VERSION)-linux-$(shell uname -m).tar.gz

# The lint gate: clippy on every target with warnings as errors, and the
# docs built with rustdoc's warnings as errors (a broken link, a public doc
# linking a private item); both libraries deny missing docs. Clippy and
# rustdoc need the dependencies' metadata, which the release build does not
# produce: from a fresh clone this checks every dependency once more.
lint: deps
	@# rustup's minimal profile has no clippy; its default one does.
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --locked --workspace --no-deps

# Every test: the lint gate first (right after the build, so a lint failure
# fails fast), then unit, property, integration against real peers, doc tests,
# then the package. The tests run on the release build, the one `make run`
# and the package ship: the dependencies compile once for all three. The
# protocol core's tests (with every kept fuzz input) run again unoptimised,
# with overflow checks and debug assertions as the fuzzers build it, so a
# length computed wrong panics there instead of wrapping (it is small: the
# second build takes a minute).
test: test-deps package-deps
	$(CARGO) build --release --locked --workspace --all-targets
	$(MAKE) lint
	$(CARGO) test --release --locked --workspace --all-targets --no-fail-fast
	$(CARGO) test --release --locked --workspace --doc
	$(CARGO) test --locked -p tally-proto
	$(MAKE) package-check

# Every benchmark but the 30-minute soak (`make soak`).
BENCHES := rtmp_chunk amf0 flv_mux convert compose audio_path fanout late_join recovery preview
# Tally's own code type-checked for Windows from Linux (MinGW-w64; fdk-aac's
# headers need __LP64__ to get through there, and check never links).
# macOS has no SDK here: its side of every cfg is kept by review
# (docs/BUILDING.md).
portable: deps
	@./scripts/ensure-packages.sh gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64
	rustup target add x86_64-pc-windows-gnu
	CFLAGS_x86_64_pc_windows_gnu=-D__LP64__ $(CARGO) check --locked --target x86_64-pc-windows-gnu --bin tally

bench: test-deps
	$(CARGO) bench --locked $(addprefix --bench ,$(BENCHES))
	./benches/compare.sh
	./benches/live_cpu.sh
	./benches/renditions.sh
	./benches/camera.sh

# Re-runs the recovery benchmark (faults and congestion) and plots its last
# congestion run: docs/congestion.csv -> docs/congestion.png; then the two-
# destination congestion test: docs/renditions.csv -> docs/renditions.png.
plot: test-deps
	@./scripts/ensure-packages.sh gnuplot-nox
	TALLY_CONGESTION_CSV=$(CURDIR)/docs/congestion.csv $(CARGO) bench --locked --bench recovery
	gnuplot docs/congestion.gp
	$(MAKE) plot-renditions

plot-renditions: test-deps
	@./scripts/ensure-packages.sh gnuplot-nox
	TALLY_RENDITIONS_CSV=$(CURDIR)/docs/renditions.csv $(CARGO) test --release --locked --test it -- --exact \
		renditions::a_congested_destination_gets_its_own_encode_and_the_other_keeps_its_bitrate_then_it_rejoins
	gnuplot docs/renditions.gp

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
