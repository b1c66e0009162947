#!/bin/bash
# tests/e2e/agent_template.sh - every launch of agent_launch.sh, each
# started from its configuration's booted template (issue 15: "a template
# launch of the agent stand-in passes every check e2e/agent_launch makes").
#
# The payload first makes the templates: one launch of each configuration
# the checks use (two vCPUs; one; one without the state share) boots while
# a second kvmbox saves the template, and the test waits for all three.
# Then, with KVMBOX_TEMPLATE=1 (the configuration's `template` knob), the
# same launches as agent_launch.sh run and every one of its checks is made
# on them, less those of the first template launch itself, plus: each
# launch restored (no word of booting, its guest's command line carrying
# the template's marker, no kernel_loaded or guest_init_started in its
# profile).  The per-launch things a template cannot hold (arguments,
# placeholders, the CA, the hook, the state, the self-test's faults, the
# sessions) arrive over the control port after the restore.
# test-timeout: 2400
AGENT_LAUNCH_FROM=template
. "$(dirname "$0")/agent_launch.sh"
