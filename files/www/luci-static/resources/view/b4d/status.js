'use strict';
'require view';
'require dom';
'require rpc';
'require poll';
'require ui';

/*
 * Status → DS-Lite: what b4d (the DS-Lite B4, RFC 6333) is doing and why,
 * read from the ubus object `b4` through rpcd (ACL: luci-app-b4d).
 *
 * Every value shown comes from the daemon; nothing is guessed here. Strings
 * from the network (lease hostnames, DHCPv6 domains, reasons quoting them)
 * are always passed to E() inside an array, which makes them text nodes:
 * a bare string child would be parsed as HTML.
 */

var callStatus = rpc.declare({
	object: 'b4',
	method: 'status',
	expect: { '': {} }
});

var callLeases = rpc.declare({
	object: 'b4',
	method: 'leases',
	expect: { leases: [] }
});

/* No `expect` on the two actions: a failing call then resolves to the
 * numeric ubus status (8 = not supported), which the page explains. */
var callRenew = rpc.declare({
	object: 'b4',
	method: 'renew',
	params: [ 'reason' ]
});

var callCheck = rpc.declare({
	object: 'b4',
	method: 'check'
});

var UBUS_STATUS_NOT_SUPPORTED = 8;

function isObject(v) {
	return v != null && typeof(v) == 'object' && !Array.isArray(v);
}

function text(v) {
	return [ (v == null || v === '') ? '-' : String(v) ];
}

/* Seconds → "2h 5m 10s"; lifetimes that never end arrive as "infinite". */
function duration(v) {
	if (v == null)
		return '-';
	if (typeof(v) != 'number')
		return String(v);

	var s = Math.max(0, Math.floor(v)), parts = [];
	var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;

	if (d) parts.push(d + 'd');
	if (h) parts.push(h + 'h');
	if (m) parts.push(m + 'm');
	if (s % 60 || !parts.length) parts.push((s % 60) + 's');

	return parts.join(' ');
}

function bytes(n) {
	if (typeof(n) != 'number')
		return '-';

	var units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ], i = 0;

	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}

	return (i ? n.toFixed(2) : String(n)) + ' ' + units[i];
}

/* Unix seconds → local date and time. */
function timestamp(t) {
	if (typeof(t) != 'number' || t <= 0)
		return '-';

	return new Date(t * 1000).toLocaleString();
}

function stamped(e) {
	if (!isObject(e))
		return '-';

	return '%s (%s)'.format(e.text || '-', timestamp(e.time));
}

function list(v) {
	if (!Array.isArray(v) || !v.length)
		return '-';

	return v.join(', ');
}

function yesno(v) {
	if (v == null)
		return '-';

	return v ? _('yes') : _('no');
}

/* One table of label/value rows; rows whose value is `undefined` are left out
 * (the daemon omits what does not apply, e.g. the tunnel MTU before a plan). */
function infoTable(rows) {
	var table = E('table', { 'class': 'table' });

	rows.forEach(function(row) {
		if (row[1] === undefined)
			return;

		table.appendChild(E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td left', 'width': '33%' }, [ row[0] ]),
			E('td', { 'class': 'td left', 'data-field': row[2] || null },
				Array.isArray(row[1]) ? row[1] : text(row[1]))
		]));
	});

	return table;
}

function section(title, body) {
	return E('div', { 'class': 'cbi-section' }, [
		E('h3', {}, [ title ]),
		body
	]);
}

/* LuCI's alert classes: success (green), notice (blue), warning, danger. */
function stateClass(state) {
	switch (state) {
	case 'up':
		return 'success';
	case 'down':
		return 'danger';
	case 'disabled':
		return 'notice';
	default:
		return 'warning';
	}
}

/* The overall states of `b4 status` in words; unknown ones as they come. */
function stateText(state) {
	switch (state) {
	case 'starting':
		return _('starting');
	case 'waiting-for-wan':
		return _('waiting for the WAN');
	case 'up':
		return _('up');
	case 'down':
		return _('down');
	case 'disabled':
		return _('disabled');
	default:
		return state || _('unknown');
	}
}

function renderBanner(st) {
	return E('div', {
		'class': 'alert-message ' + stateClass(st.state),
		'id': 'b4d-state'
	}, [
		E('strong', {}, [ _('DS-Lite is %s').format(stateText(st.state)) ]),
		st.reason ? E('span', {}, [ ': ' + st.reason ]) : '',
		E('br'),
		E('small', {}, [
			_('for %s; b4d %s, running for %s').format(
				duration(st.state_since), st.version || '?', duration(st.uptime))
		])
	]);
}

function renderOverview(st) {
	var wan = isObject(st.wan) ? st.wan : {};
	/* The problems are set only while a LAN service cannot serve (dnsmasq
	 * holds its port, the LAN device has no IPv4 address). */
	var dns = isObject(st.dns) ? st.dns : {};
	var dhcpv4 = isObject(st.dhcpv4) ? st.dhcpv4 : {};

	return section(_('Overview'), infoTable([
		[ _('State'), st.state, 'state' ],
		[ _('Reason'), st.reason, 'reason' ],
		[ _('In this state for'), duration(st.state_since) ],
		[ _('WAN device'), wan.device, 'wan-device' ],
		[ _('WAN IPv6 address'), wan.address, 'wan-address' ],
		[ _('LAN IPv4 address'), dhcpv4.subnet, 'lan-subnet' ],
		[ _('Last event'), stamped(st.last_event) ],
		[ _('Last error'), stamped(st.last_error), 'last-error' ],
		[ _('DNS proxy not serving'), dns.problem, 'dns-problem' ],
		[ _('DHCPv4 server not serving'), dhcpv4.problem, 'dhcpv4-problem' ],
		[ _('Uptime'), duration(st.uptime) ],
		[ _('Version'), st.version ]
	]));
}

function renderAftr(a) {
	if (!isObject(a))
		return section(_('AFTR'), E('p', {}, [ _('No AFTR known yet.') ]));

	var addrs = Array.isArray(a.addresses) ? a.addresses : [];
	var addrNodes = addrs.length ? [] : text(null);

	addrs.forEach(function(addr, i) {
		if (i)
			addrNodes.push(E('br'));
		addrNodes.push(addr == a.selected
			? E('strong', {}, [ addr + ' ' + _('(in use)') ])
			: E('span', {}, [ addr ]));
	});

	return section(_('AFTR'), infoTable([
		[ _('Name'), a.name, 'aftr-name' ],
		[ _('Addresses'), addrNodes, 'aftr-addresses' ],
		[ _('In use'), a.selected, 'aftr-selected' ],
		[ _('Resolved by'), a.resolved_by ],
		[ _('Resolved'), a.resolved_ago != null ? _('%s ago').format(duration(a.resolved_ago)) : undefined ],
		[ _('TTL'), a.ttl != null ? duration(a.ttl) : undefined ],
		[ _('Stale'), a.stale ? _('yes: the last lookup failed, the old addresses are kept') : undefined ],
		[ _('Problem'), a.problem, 'aftr-problem' ],
		[ _('Next lookup in'), a.next_lookup_in != null ? duration(a.next_lookup_in) : undefined ],
		[ _('Failed lookups'), a.failures ]
	]));
}

function renderTunnel(t) {
	if (!isObject(t))
		return section(_('Tunnel'), E('p', {}, [ _('The tunnel is not configured.') ]));

	var c = isObject(t.counters) ? t.counters : null;

	return section(_('Tunnel'), infoTable([
		[ _('State'), t.state, 'tunnel-state' ],
		[ _('Reason'), t.reason, 'tunnel-reason' ],
		[ _('Since'), t.since != null ? _('%s ago').format(duration(t.since)) : undefined ],
		[ _('Device'), t.name ],
		[ _('Local (B4)'), t.local, 'tunnel-local' ],
		[ _('Remote (AFTR)'), t.remote, 'tunnel-remote' ],
		[ _('MTU'), t.mtu, 'tunnel-mtu' ],
		[ _('Encapsulation limit'), t.encaplimit ],
		[ _('Hop limit'), t.hop_limit ],
		[ _('IPv4 address'), t.ipv4_address ],
		[ _('IPv4 peer'), t.peer ],
		[ _('Default route metric'), t.default_route_metric ],
		[ _('TCP MSS clamping'), t.mss_clamp != null ? yesno(t.mss_clamp) : undefined ],
		[ _('Received'), c ? _('%d packets, %s').format(c.rx_packets, bytes(c.rx_bytes)) : undefined, 'tunnel-rx' ],
		[ _('Sent'), c ? _('%d packets, %s').format(c.tx_packets, bytes(c.tx_bytes)) : undefined, 'tunnel-tx' ],
		[ _('Send errors'), c ? c.tx_errors : undefined ],
		[ _('Last error'), t.last_error ]
	]));
}

function renderDhcpv6(d) {
	if (!isObject(d))
		return section(_('DHCPv6'), E('p', {}, [ _('DHCPv6 is off (manual configuration).') ]));

	var addrs = (Array.isArray(d.addresses) ? d.addresses : []).map(function(a) {
		return '%s (preferred %s, valid %s)'.format(a.address, duration(a.preferred), duration(a.valid));
	});
	var prefixes = (Array.isArray(d.prefixes) ? d.prefixes : []).map(function(p) {
		return '%s (preferred %s, valid %s)'.format(p.prefix, duration(p.preferred), duration(p.valid));
	});
	var c = isObject(d.counters) ? d.counters : null;
	var dropped = (c && isObject(c.dropped)) ? Object.keys(c.dropped).map(function(k) {
		return k + ': ' + c.dropped[k];
	}) : [];

	return section(_('DHCPv6 lease'), infoTable([
		[ _('State'), d.state, 'dhcpv6-state' ],
		[ _('Last problem'), d.last_problem ],
		[ _('Server'), d.server ],
		[ _('Updated'), d.updated != null ? _('%s ago').format(duration(d.updated)) : undefined ],
		[ _('Renew (T1) in'), d.t1 !== undefined ? duration(d.t1) : undefined ],
		[ _('Rebind (T2) in'), d.t2 !== undefined ? duration(d.t2) : undefined ],
		[ _('Addresses'), addrs.length ? list(addrs) : (d.addresses ? '-' : undefined) ],
		[ _('Delegated prefixes'), prefixes.length ? list(prefixes) : (d.prefixes ? '-' : undefined) ],
		[ _('DNS servers'), list(d.dns_servers) ],
		[ _('Domains'), list(d.domains) ],
		[ _('AFTR name (option 64)'), d.aftr_name ],
		[ _('Messages'), c ? _('%d sent, %d received, %d accepted').format(c.sent, c.received, c.accepted) : undefined ],
		[ _('Dropped'), dropped.length ? list(dropped) : undefined ]
	]));
}

function renderLeases(leases) {
	var table = E('table', { 'class': 'table', 'id': 'b4d-leases' }, [
		E('tr', { 'class': 'tr table-titles' }, [
			E('th', { 'class': 'th' }, [ _('Hostname') ]),
			E('th', { 'class': 'th' }, [ _('IPv4 address') ]),
			E('th', { 'class': 'th' }, [ _('MAC address') ]),
			E('th', { 'class': 'th' }, [ _('Expires in') ])
		])
	]);

	if (!Array.isArray(leases) || !leases.length) {
		table.appendChild(E('tr', { 'class': 'tr placeholder' }, [
			E('td', { 'class': 'td', 'colspan': '4' }, [ _('No active leases') ])
		]));
	}
	else {
		leases.forEach(function(l) {
			table.appendChild(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, text(l.hostname)),
				E('td', { 'class': 'td' }, text(l.ip)),
				E('td', { 'class': 'td' }, text(l.mac)),
				E('td', { 'class': 'td' }, [ l['static'] ? _('static') : duration(l.expires) ])
			]));
		});
	}

	return section(_('DHCPv4 leases'), table);
}

/* The `check` reply: {"ok": bool, "checks": [{name, ok | skipped, detail}]},
 * `ok` absent and `skipped` true for a check with nothing to check. */
function checkLabel(name) {
	switch (name) {
	case 'aftr_reachable':
		return _('AFTR reachable over IPv6');
	case 'tunnel_full_size':
		return _('Full-size packet through the tunnel');
	case 'dns_proxy':
		return _('DNS proxy answers');
	default:
		return name;
	}
}

function checkResult(c) {
	if (c.ok === true)
		return E('span', { 'class': 'label success' }, [ _('pass') ]);
	if (c.ok === false)
		return E('span', { 'class': 'label warning' }, [ _('FAIL') ]);

	return E('span', { 'class': 'label' }, [ _('skipped') ]);
}

function renderChecks(res) {
	if (res === UBUS_STATUS_NOT_SUPPORTED)
		return E('div', { 'class': 'alert-message notice' }, [
			_('Diagnostics not available: this b4d does not implement checks yet.')
		]);

	if (typeof(res) == 'number' && res != 0)
		return E('div', { 'class': 'alert-message warning' }, [
			_('The checks could not run: %s').format(rpc.getStatusText(res))
		]);

	var checks = (isObject(res) && Array.isArray(res.checks)) ? res.checks.filter(isObject) : [];

	if (!checks.length)
		return E('div', { 'class': 'alert-message notice' }, [ _('No checks were reported.') ]);

	var table = E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, [
			E('th', { 'class': 'th' }, [ _('Check') ]),
			E('th', { 'class': 'th' }, [ _('Result') ]),
			E('th', { 'class': 'th' }, [ _('Details') ])
		])
	]);

	checks.forEach(function(c) {
		table.appendChild(E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td' }, text(checkLabel(c.name))),
			E('td', { 'class': 'td' }, [ checkResult(c) ]),
			E('td', { 'class': 'td' }, text(c.detail))
		]));
	});

	return section(_('Checks'), E([], [
		E('p', {}, [ res.ok === false ? _('At least one check failed.') : _('No check failed.') ]),
		table
	]));
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(callStatus(), {}),
			L.resolveDefault(callLeases(), [])
		]);
	},

	renderSections: function(st, leases) {
		if (!isObject(st) || !st.state)
			return [
				E('div', { 'class': 'alert-message warning', 'id': 'b4d-state' }, [
					_('b4d does not answer: is the service running (/etc/init.d/b4d status) and ubus enabled in /etc/config/b4d?')
				])
			];

		return [
			renderBanner(st),
			renderOverview(st),
			renderAftr(st.aftr),
			renderTunnel(st.tunnel),
			renderDhcpv6(st.dhcpv6),
			renderLeases(leases)
		];
	},

	handleRenew: function(ev) {
		/* The reason ends up in b4d's log: "renew requested (LuCI)". */
		return callRenew('LuCI').then(function(res) {
			if (res === UBUS_STATUS_NOT_SUPPORTED)
				ui.addNotification(null, E('p', {}, [
					_('Nothing to renew: DHCPv6 is off.')
				]), 'info');
			else if (typeof(res) == 'number' && res != 0)
				ui.addNotification(null, E('p', {}, [
					_('Renew failed: %s').format(rpc.getStatusText(res))
				]), 'danger');
			else
				ui.addNotification(null, E('p', {}, [
					_('Renew requested: b4d renews its DHCPv6 lease and looks the AFTR up again.')
				]), 'info');
		}).catch(function(err) {
			ui.addNotification(null, E('p', {}, [ _('Renew failed: %s').format(err.message || err) ]), 'danger');
		});
	},

	handleCheck: function(ev) {
		var out = document.getElementById('b4d-checks');

		dom.content(out, E('p', { 'class': 'spinning' }, [ _('Running checks…') ]));

		return callCheck().then(function(res) {
			dom.content(out, renderChecks(res));
		}).catch(function(err) {
			dom.content(out, E('div', { 'class': 'alert-message warning' }, [
				_('The checks could not run: %s').format(err.message || err)
			]));
		});
	},

	render: function(data) {
		var sections = E('div', { 'id': 'b4d-sections' }, this.renderSections(data[0], data[1]));

		poll.add(L.bind(function() {
			return Promise.all([
				L.resolveDefault(callStatus(), {}),
				L.resolveDefault(callLeases(), [])
			]).then(L.bind(function(res) {
				dom.content(sections, this.renderSections(res[0], res[1]));
			}, this));
		}, this), 5);

		return E([], [
			E('h2', {}, [ _('DS-Lite') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('IPv4 over IPv6 (DS-Lite, RFC 6333): the IPv4 traffic of this network goes through a tunnel to the provider\'s AFTR.')
			]),
			E('div', { 'class': 'cbi-page-actions', 'style': 'text-align:left' }, [
				E('button', {
					'class': 'cbi-button cbi-button-action',
					'id': 'b4d-renew',
					'click': ui.createHandlerFn(this, 'handleRenew')
				}, [ _('Renew') ]),
				' ',
				E('button', {
					'class': 'cbi-button cbi-button-neutral',
					'id': 'b4d-check',
					'click': ui.createHandlerFn(this, 'handleCheck')
				}, [ _('Run checks') ])
			]),
			E('div', { 'id': 'b4d-checks' }),
			sections
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
