#!/usr/bin/env bash
# Provision a worker host for distrl_jax actors on real Android emulators.
#
#   actors/setup_worker.sh                 # everything: KVM check, JDK, SDK, AVD, snapshot
#   actors/setup_worker.sh --snapshot-only # (re)create the boot snapshot of an existing AVD
#
# Steps: check /dev/kvm; install a JDK 17 (apt) if java is missing; download the Android SDK
# command-line tools; sdkmanager installs platform-tools, the emulator and the system image;
# avdmanager creates a Pixel 4 class AVD (1080x2280, 440 dpi, as DigiRL's device); one boot
# saves a snapshot (animations off, home screen) that every read-only instance starts from.
#
# Settings (environment or flags):
#   ANDROID_HOME   --sdk DIR     SDK folder (default ~/android-sdk)
#   AVD_NAME       --avd NAME    AVD name (default distrl_pixel)
#   ANDROID_API    --api N       system image API level (default 28, as DigiRL/DistRL)
#   SNAPSHOT_NAME                snapshot name (default default_boot)
#   SNAPSHOT_PORT                console port for the snapshot boot (default 5554)
#   CMDLINE_TOOLS_VERSION        command-line tools build (default 11076708)
#   CMDLINE_TOOLS_SHA256         if set, the download must have this SHA-256
#   --skip-kvm-check             build an image without KVM (snapshots still need it)
#   --skip-snapshot              stop after creating the AVD
set -euo pipefail

ANDROID_HOME="${ANDROID_HOME:-${HOME}/android-sdk}"
AVD_NAME="${AVD_NAME:-distrl_pixel}"
ANDROID_API="${ANDROID_API:-28}"
SNAPSHOT_NAME="${SNAPSHOT_NAME:-default_boot}"
SNAPSHOT_PORT="${SNAPSHOT_PORT:-5554}"
CMDLINE_TOOLS_VERSION="${CMDLINE_TOOLS_VERSION:-11076708}"
CMDLINE_TOOLS_SHA256="${CMDLINE_TOOLS_SHA256:-}"
SKIP_KVM_CHECK=0
SKIP_SNAPSHOT=0
SNAPSHOT_ONLY=0

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --sdk) ANDROID_HOME="$2"; shift 2 ;;
        --avd) AVD_NAME="$2"; shift 2 ;;
        --api) ANDROID_API="$2"; shift 2 ;;
        --skip-kvm-check) SKIP_KVM_CHECK=1; shift ;;
        --skip-snapshot) SKIP_SNAPSHOT=1; shift ;;
        --snapshot-only) SNAPSHOT_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

export ANDROID_HOME ANDROID_SDK_ROOT="${ANDROID_HOME}"
export ANDROID_AVD_HOME="${ANDROID_AVD_HOME:-${HOME}/.android/avd}"
IMAGE="system-images;android-${ANDROID_API};google_apis;x86_64"
SDKMANAGER="${ANDROID_HOME}/cmdline-tools/latest/bin/sdkmanager"
AVDMANAGER="${ANDROID_HOME}/cmdline-tools/latest/bin/avdmanager"
EMULATOR="${ANDROID_HOME}/emulator/emulator"
ADB="${ANDROID_HOME}/platform-tools/adb"
SERIAL="emulator-${SNAPSHOT_PORT}"

log() { printf '[setup_worker] %s\n' "$*"; }
die() { printf '[setup_worker] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

check_kvm() {
    if [[ "${SKIP_KVM_CHECK}" -eq 1 ]]; then
        log "skipping the KVM check"
        return
    fi
    [[ -e /dev/kvm ]] || die "/dev/kvm is missing: enable virtualisation (VT-x/AMD-V) in the \
BIOS, or nested virtualisation on a cloud VM; emulators without KVM are ~5-10x slower"
    [[ -r /dev/kvm && -w /dev/kvm ]] || die "no access to /dev/kvm: run \
'sudo usermod -aG kvm ${USER:-$(id -un)}' and log in again (or pass --device /dev/kvm to docker)"
    log "KVM: /dev/kvm is usable"
}

install_jdk() {
    if command -v java >/dev/null 2>&1; then
        log "java: $(java -version 2>&1 | head -n 1)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "no java and no apt-get: install a JDK 17 yourself"
    log "installing openjdk-17-jdk-headless and unzip"
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends openjdk-17-jdk-headless unzip curl
}

install_cmdline_tools() {
    if [[ -x "${SDKMANAGER}" ]]; then
        log "command-line tools present in ${ANDROID_HOME}"
        return
    fi
    local zip url tmp
    zip="commandlinetools-linux-${CMDLINE_TOOLS_VERSION}_latest.zip"
    url="https://dl.google.com/android/repository/${zip}"
    tmp="$(mktemp -d)"
    log "downloading ${url}"
    curl -fL --retry 3 -o "${tmp}/${zip}" "${url}"
    if [[ -n "${CMDLINE_TOOLS_SHA256}" ]]; then
        echo "${CMDLINE_TOOLS_SHA256}  ${tmp}/${zip}" | sha256sum -c - \
            || die "checksum mismatch for ${zip}"
    fi
    mkdir -p "${ANDROID_HOME}/cmdline-tools"
    unzip -q "${tmp}/${zip}" -d "${tmp}"
    rm -rf "${ANDROID_HOME}/cmdline-tools/latest"
    mv "${tmp}/cmdline-tools" "${ANDROID_HOME}/cmdline-tools/latest"
    rm -rf "${tmp}"
}

install_sdk_packages() {
    log "installing platform-tools, emulator and ${IMAGE}"
    # sdkmanager asks to accept each licence; 'yes' closing the pipe early is expected.
    yes | "${SDKMANAGER}" --licenses >/dev/null || true
    "${SDKMANAGER}" --install "platform-tools" "emulator" "platforms;android-${ANDROID_API}" \
        "${IMAGE}"
}

set_avd_option() {
    # set_avd_option FILE KEY VALUE: replace "KEY=..." (any spacing) or append it.
    local file="$1" key="$2" value="$3"
    if grep -qE "^${key}[[:space:]]*=" "${file}"; then
        sed -i -E "s|^${key}[[:space:]]*=.*|${key}=${value}|" "${file}"
    else
        printf '%s=%s\n' "${key}" "${value}" >>"${file}"
    fi
}

create_avd() {
    local config="${ANDROID_AVD_HOME}/${AVD_NAME}.avd/config.ini"
    if [[ -f "${config}" ]]; then
        log "AVD ${AVD_NAME} exists (${config})"
        return
    fi
    log "creating AVD ${AVD_NAME} (Pixel 4: 1080x2280, 440 dpi) from ${IMAGE}"
    mkdir -p "${ANDROID_AVD_HOME}"
    echo "no" | "${AVDMANAGER}" create avd --force --name "${AVD_NAME}" --package "${IMAGE}" \
        --device "pixel_4"
    # As DigiRL's device: portrait 1080x2280 at 440 dpi, a hardware keyboard for `input text`,
    # a 6 GB data partition, no Play Store.
    set_avd_option "${config}" hw.lcd.width 1080
    set_avd_option "${config}" hw.lcd.height 2280
    set_avd_option "${config}" hw.lcd.density 440
    set_avd_option "${config}" hw.keyboard yes
    set_avd_option "${config}" hw.gpu.enabled yes
    set_avd_option "${config}" hw.gpu.mode swiftshader_indirect
    set_avd_option "${config}" disk.dataPartition.size 6442450944
    set_avd_option "${config}" PlayStore.enabled false
    set_avd_option "${config}" fastboot.forceFastBoot yes
}

wait_booted() {
    local deadline=$((SECONDS + 600))
    "${ADB}" -s "${SERIAL}" wait-for-device
    until [[ "$("${ADB}" -s "${SERIAL}" shell getprop sys.boot_completed 2>/dev/null \
            | tr -d '\r')" == "1" ]]; do
        ((SECONDS < deadline)) || die "${SERIAL} did not boot within 600 s"
        sleep 2
    done
}

create_snapshot() {
    if [[ -d "${ANDROID_AVD_HOME}/${AVD_NAME}.avd/snapshots/${SNAPSHOT_NAME}" ]]; then
        log "snapshot '${SNAPSHOT_NAME}' exists (delete its folder to make it again)"
        return
    fi
    log "booting ${AVD_NAME} on port ${SNAPSHOT_PORT} to save snapshot '${SNAPSHOT_NAME}'"
    "${ADB}" start-server >/dev/null
    "${EMULATOR}" -avd "${AVD_NAME}" -port "${SNAPSHOT_PORT}" -no-window -no-audio \
        -no-boot-anim -gpu swiftshader_indirect -accel on -no-snapshot-load \
        >"${TMPDIR:-/tmp}/distrl_snapshot_boot.log" 2>&1 &
    local emu_pid=$!
    trap 'kill "${emu_pid}" 2>/dev/null || true' EXIT
    wait_booted
    sleep 20  # let first-boot services settle before freezing the state
    local setting
    for setting in window_animation_scale transition_animation_scale animator_duration_scale; do
        "${ADB}" -s "${SERIAL}" shell settings put global "${setting}" 0
    done
    "${ADB}" -s "${SERIAL}" shell settings put global stay_on_while_plugged_in 7
    "${ADB}" -s "${SERIAL}" shell input keyevent KEYCODE_HOME
    sleep 2
    "${ADB}" -s "${SERIAL}" emu avd snapshot save "${SNAPSHOT_NAME}"
    "${ADB}" -s "${SERIAL}" emu kill
    wait "${emu_pid}" || true
    trap - EXIT
    log "snapshot '${SNAPSHOT_NAME}' saved; emulators now boot with -snapshot ${SNAPSHOT_NAME}"
}

main() {
    check_kvm
    if [[ "${SNAPSHOT_ONLY}" -eq 0 ]]; then
        install_jdk
        install_cmdline_tools
        install_sdk_packages
        create_avd
    fi
    [[ -x "${EMULATOR}" ]] || die "no emulator at ${EMULATOR}: run without --snapshot-only first"
    if [[ "${SKIP_SNAPSHOT}" -eq 0 ]]; then
        create_snapshot
    fi
    log "done. Add to your shell profile:"
    log "  export ANDROID_HOME=${ANDROID_HOME}"
    log "  export PATH=\"\${ANDROID_HOME}/emulator:\${ANDROID_HOME}/platform-tools:\${PATH}\""
    log "then: python actors/launch_emulators.py --avd ${AVD_NAME} --count K --learner tcp://HOST:PORT"
}

main
