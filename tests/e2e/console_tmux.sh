#!/bin/bash
# tests/e2e/console_tmux.sh - an interactive `kvmbox shell` driven through
# tmux, as a user at a terminal would use it, with the real guest kernel and
# kvmbox-init on a real KVM (the nested harness, tests/e2e/lib/nested.sh).
# tmux (with its libraries and terminfo) runs inside L1; in a pane,
# `kvmbox shell` starts the guest's shell and tests/e2e/lib/console_tmux_drive.sh
# types into it (send-keys) and reads the screen (capture-pane): a command's
# output appears; the terminal is raw while kvmbox runs; `stty size` in the
# guest is the pane's size and follows tmux resize-window; Ctrl-C interrupts
# the guest's `sleep 100` and the guest's prompt comes back with kvmbox still
# running; `exit 3` ends kvmbox with status 3 and the pane's terminal
# settings (stty -g) are what they were before.
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
need_cmd tmux
e2e_prepare
e2e_add_program "$E2E_L1_ROOT" "$(command -v tmux)" /usr/bin/tmux
e2e_add_terminfo "$E2E_L1_ROOT" screen tmux tmux-256color dumb linux xterm
cp "$KVMBOX_TOP/tests/e2e/lib/console_tmux_drive.sh" "$E2E_L1_ROOT/tmux_drive.sh"
# tmux refuses to start without a UTF-8 locale (C.UTF-8 is glibc's own).
[ -d /usr/lib/locale/C.utf8 ] || skip_all "needs the C.UTF-8 locale (/usr/lib/locale/C.utf8)"
mkdir -p "$E2E_L1_ROOT/usr/lib/locale"
cp -r /usr/lib/locale/C.utf8 "$E2E_L1_ROOT/usr/lib/locale/"

payload=$(cat <<'PAYLOAD'
e2e_step baseline 150 kvmbox run --kernel /vmlinux --initrd /l2.cpio -- true
export TERM=screen LANG=C.UTF-8
e2e_step tmux 420 sh /tmux_drive.sh kvmbox shell --kernel /vmlinux --initrd /l2.cpio
PAYLOAD
)
e2e_run_or_bail "$payload" 600
if [ "$(e2e_step_rc baseline)" != 0 ]; then
	skip "kvmbox shell in tmux" "the guest does not boot here: kvmbox run -- true gave $(e2e_step_rc baseline)"
	tap_done
	exit
fi
out=$(e2e_step_out tmux)
# result NAME WHAT: the driver's verdict for one check
result() {
	local line
	line=$(grep "^@@T $1 " <<<"$out" | head -n 1)
	case $line in
	"@@T $1 ok") ok "$2" ;;
	"") not_ok "$2" "no verdict (driver status $(e2e_step_rc tmux)); output:"$'\n'"$(tail -n 40 <<<"$out")" ;;
	*) not_ok "$2" "${line#@@T $1 FAIL }"$'\n'"$(sed -n '/@@T-PANE-BEGIN/,/@@T-PANE-END/p' <<<"$out" | tail -n 40)" ;;
	esac
}
result command "a command typed in the pane runs in the guest and its output shows"
result raw "the pane's terminal is raw while kvmbox runs"
result size "stty size in the guest is the pane's size"
result resize "after tmux resize-window, stty size follows"
result ctrl-c "Ctrl-C interrupts the guest's sleep 100 and the prompt comes back"
result vm-kept "and kvmbox keeps running"
result exit "exit 3 ends kvmbox with status 3"
result restored "the pane's terminal settings are restored"
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)${E2E_RETRY_NOTE:+; $E2E_RETRY_NOTE}"
tap_done
