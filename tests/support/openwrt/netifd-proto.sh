# A stand-in for OpenWrt's /lib/netifd/netifd-proto.sh, for tests: the
# documented behaviour of init_proto and add_protocol (netifd runs a handler
# as `SCRIPT '' dump`, `SCRIPT PROTO setup|teardown|renew IFACE DATA IFNAME`
# with the handlers' folder as working directory), each step logged to
# $RC_LOG instead of talking to netifd.

init_proto() {
	proto="$1"
	cmd="$2"
	shift 2
	case "$cmd" in
	dump)
		add_protocol() {
			no_device=0
			no_proto_task=0
			available=0
			renew_handler=0
			eval "proto_$1_init_config"
			echo "dump|name=$1|no_device=$no_device|no_proto_task=$no_proto_task|available=$available|renew_handler=$renew_handler" >>"$RC_LOG"
		}
		;;
	setup | teardown | renew)
		interface="$1"
		data="$2"
		ifname="$3"
		add_protocol() {
			[ "$proto" = "$1" ] || return 0
			echo "$cmd|$interface|$ifname" >>"$RC_LOG"
			eval "proto_$1_$cmd \"\$interface\" \"\$ifname\""
		}
		;;
	esac
}
