#!/bin/sh
# shellcheck shell=dash
# netifd protocol handler 'b4' for b4d, the DS-Lite B4 (normally on wan6):
#
#   config interface 'wan6'
#           option device 'wan'
#           option proto 'b4'
#
# b4d is a procd service of its own (it also runs the tunnel, the LAN DNS
# proxy and the DHCPv4 server), so netifd must not start or stop it: this
# handler has no task (no_proto_task). Its setup only asks b4d to report the
# interface again; b4d sends the address, delegated prefixes (with lifetimes),
# DNS servers and domains with `ubus call network.interface notify_proto` on
# every change, and "link-up": false when the lease is lost or b4d stops. Its
# teardown tells b4d to report nothing until the next setup.

[ -n "$INCLUDE_ONLY" ] || {
	# shellcheck source=/dev/null
	. ../netifd-proto.sh
	init_proto "$@"
}

proto_b4_init_config() {
	# shellcheck disable=SC2034 # read by init_proto's dump
	no_proto_task=1
}

proto_b4_setup() {
	local interface="$1"

	# b4d may still be starting: it reports on its own once it has a lease.
	ubus -t 5 call b4 netifd_setup "{\"interface\":\"$interface\"}" >/dev/null 2>&1 ||
		logger -t b4d "netifd: b4d is not answering yet; it reports to $interface when it has a lease"
}

proto_b4_teardown() {
	local interface="$1"

	# netifd drops what b4d reported once this returns, but it would take a
	# new report while the interface is down (and hand the delegated prefix
	# to the LAN again): b4d stays quiet until the next setup. It keeps its
	# DHCPv6 binding; nothing to stop.
	ubus -t 2 call b4 netifd_teardown "{\"interface\":\"$interface\"}" >/dev/null 2>&1 || :
}

[ -n "$INCLUDE_ONLY" ] || add_protocol b4
