/*
 * A minimal stand-in for the LuCI client runtime (luci.js with its built-in
 * classes, plus rpc.js and ui.js), just the surface the b4d status view uses,
 * written for the headless Chromium test (tests/luci_page.rs).
 *
 * It follows the documented behaviour of the real one where the view depends
 * on it:
 *  - L.require() loads `<base>/<name with dots as slashes>.js`, resolves the
 *    leading 'require x' strings as dependencies passed by their last name,
 *    and instantiates the class the file returns (so a view renders itself);
 *  - dom.append(): a sole string child becomes innerHTML, strings inside an
 *    array become text nodes; attributes with function values are listeners,
 *    null/undefined attributes are skipped;
 *  - rpc.declare(): ubus JSON-RPC `call` with the session id, the reply
 *    `result` [status, data] reduced to data (or to the status alone when
 *    there is no data), then `expect` applied: missing or wrongly typed values
 *    are replaced by the default; JSON-RPC errors reject;
 *  - poll.add(fn, seconds); ui.createHandlerFn() marks the button busy until
 *    the handler's promise settles; ui.addNotification().
 * Everything else of LuCI is deliberately absent, so a view that starts using
 * more of the API fails here loudly instead of passing by accident.
 */
(function(window, document) {
	'use strict';

	/* Class: extend() copies the statics, `new` runs __init__. */
	var Class = function() {};
	Class.extend = function(props) {
		var Parent = this;
		var Ctor = function() {
			if (typeof(this.__init__) == 'function')
				this.__init__.apply(this, arguments);
		};
		Ctor.prototype = Object.create(Parent.prototype);
		Object.keys(props).forEach(function(k) { Ctor.prototype[k] = props[k]; });
		Ctor.prototype.constructor = Ctor;
		Ctor.extend = Parent.extend;
		Ctor.singleton = Parent.singleton;
		return Ctor;
	};
	Class.singleton = function(props) {
		return new (Class.extend(props))();
	};
	Class.isSubclass = function(c) {
		return typeof(c) == 'function' && c.prototype instanceof Class;
	};

	function isElem(n) {
		return n != null && typeof(n) == 'object' && 'nodeType' in n;
	}

	var dom = Class.singleton({
		elem: isElem,
		attr: function(node, attrs) {
			if (!isElem(node) || attrs == null)
				return;
			Object.keys(attrs).forEach(function(k) {
				var v = attrs[k];
				if (v == null)
					return;
				if (typeof(v) == 'function')
					node.addEventListener(k, v);
				else if (typeof(v) == 'object')
					node.setAttribute(k, JSON.stringify(v));
				else
					node.setAttribute(k, v);
			});
		},
		append: function(node, children) {
			if (!isElem(node))
				return null;
			if (Array.isArray(children)) {
				children.forEach(function(c) {
					if (isElem(c))
						node.appendChild(c);
					else if (c != null)
						node.appendChild(document.createTextNode('' + c));
				});
				return node.lastChild;
			}
			if (typeof(children) == 'function')
				return this.append(node, children(node));
			if (isElem(children))
				return node.appendChild(children);
			if (children != null) {
				node.innerHTML = '' + children;
				return node.lastChild;
			}
			return null;
		},
		content: function(node, children) {
			if (!isElem(node))
				return null;
			while (node.firstChild)
				node.removeChild(node.firstChild);
			return this.append(node, children);
		},
		create: function(html, attr, data) {
			var elem;
			if (!(attr instanceof Object) || Array.isArray(attr)) {
				data = attr;
				attr = null;
			}
			if (Array.isArray(html)) {
				elem = document.createDocumentFragment();
				html.forEach(function(h) { elem.appendChild(dom.create(h)); });
			}
			else if (isElem(html))
				elem = html;
			else if (html.charAt(0) == '<')
				throw new Error('shim: E() with markup is not supported');
			else
				elem = document.createElement(html);
			this.attr(elem, attr);
			this.append(elem, data);
			return elem;
		}
	});

	window.E = function() { return dom.create.apply(dom, arguments); };
	window._ = function(s) { return s; };

	/* String.prototype.format, the conversions the view uses. */
	String.prototype.format = function() {
		var args = arguments, i = 0;
		return this.replace(/%([%sd])/g, function(m, conv) {
			if (conv == '%')
				return '%';
			var v = args[i++];
			if (conv == 'd')
				return Math.floor(+v || 0).toFixed(0);
			if (v == null)
				return '';
			return (typeof(v) == 'object') ? JSON.stringify(v) : String(v);
		});
	};

	var L = {
		env: { sessionid: '0123456789abcdef0123456789abcdef', pollinterval: 5,
		       ubuspath: '/ubus/', base_url: '/luci-static/resources' },
		Class: Class,
		dom: dom,
		isObject: function(v) { return v != null && typeof(v) == 'object'; },
		bind: function(fn, self) {
			return Function.prototype.bind.apply(fn, [ self ].concat([].slice.call(arguments, 2)));
		},
		resolveDefault: function(p, def) {
			return Promise.resolve(p).catch(function() { return def; });
		},
		raise: function(type, msg) {
			var e = new Error(msg);
			e.name = type;
			throw e;
		},
		error: function(e) {
			window.__luciErrors.push(String(e && e.stack || e));
			throw e;
		}
	};
	window.__luciErrors = [];
	window.L = L;

	var rpcId = 1;
	var rpc = Class.singleton({
		declare: function(opt) {
			return function() {
				var args = [].slice.call(arguments), params = {};
				(opt.params || []).forEach(function(name, i) { params[name] = args[i]; });
				var msg = { jsonrpc: '2.0', id: rpcId++, method: 'call',
				            params: [ L.env.sessionid, opt.object, opt.method, params ] };
				return fetch(L.env.ubuspath, {
					method: 'POST',
					headers: { 'Content-Type': 'application/json' },
					body: JSON.stringify(msg)
				}).then(function(res) {
					if (!res.ok)
						L.raise('RPCError', 'RPC call to ' + opt.object + '/' + opt.method + ' failed with HTTP ' + res.status);
					return res.json();
				}).then(function(reply) {
					if (!L.isObject(reply) || reply.jsonrpc != '2.0')
						L.raise('RPCError', 'invalid message frame');
					if (L.isObject(reply.error))
						L.raise('RPCError', 'RPC call to ' + opt.object + '/' + opt.method +
							' failed with error ' + reply.error.code + ': ' + reply.error.message);
					var ret = null;
					if (Array.isArray(reply.result))
						ret = (reply.result.length > 1) ? reply.result[1] : reply.result[0];
					if (opt.expect) {
						var key = Object.keys(opt.expect)[0], type = Object.prototype.toString;
						if (ret != null && key != '')
							ret = ret[key];
						if (ret == null || type.call(ret) != type.call(opt.expect[key]))
							ret = opt.expect[key];
					}
					if (typeof(opt.filter) == 'function')
						ret = opt.filter(ret, params);
					return ret;
				});
			};
		},
		getStatusText: function(code) {
			var texts = [ 'Command OK', 'Invalid command', 'Invalid argument',
				'Method not found', 'Resource not found', 'No data received',
				'Permission denied', 'Request timeout', 'Not supported',
				'Unspecified error', 'Connection lost' ];
			return texts[code] || 'Unknown error code';
		}
	});

	var poll = Class.singleton({
		add: function(fn, interval) {
			window.setInterval(fn, (interval || L.env.pollinterval) * 1000);
			return true;
		}
	});

	var ui = Class.singleton({
		createHandlerFn: function(ctx, fn) {
			var bound = [].slice.call(arguments, 2);
			if (typeof(fn) == 'string')
				fn = ctx[fn];
			return function(ev) {
				var btn = ev.currentTarget;
				if (btn.classList.contains('spinning'))
					return;
				var rv = fn.apply(ctx, bound.concat([ ev ]));
				window.__lastHandler = Promise.resolve(rv);
				if (rv && typeof(rv.then) == 'function') {
					btn.classList.add('spinning');
					btn.disabled = true;
					rv.finally(function() {
						btn.classList.remove('spinning');
						btn.disabled = false;
					});
				}
			};
		},
		addNotification: function(title, children) {
			var classes = [].slice.call(arguments, 2).join(' ');
			var msg = E('div', { 'class': 'alert-message fade-in ' + classes }, [
				title ? E('h4', {}, [ title ]) : '',
				E('div', {}, [])
			]);
			dom.append(msg.lastChild, children);
			var main = document.getElementById('maincontent');
			main.insertBefore(msg, main.firstChild);
			return msg;
		}
	});

	var View = Class.extend({
		__init__: function() {
			var vp = document.getElementById('view'), self = this;
			dom.content(vp, E('div', { 'class': 'spinning' }, [ 'Loading view…' ]));
			window.__viewReady = Promise.resolve(this.load())
				.then(function(data) { return self.render(data); })
				.then(function(nodes) { dom.content(vp, nodes); });
		},
		load: function() {},
		render: function() {}
	});

	var classes = { view: View, dom: dom, rpc: rpc, poll: poll, ui: ui, baseclass: Class };

	/* The 'require x' strings at the top of a class file, as luci.js reads them. */
	function requires(source) {
		var deps = [], re = /^\s*(['"])(.*?)\1;?/, m, rest = source;
		while ((m = re.exec(rest)) != null) {
			var r = /^require\s+(\S+)(?:\s+as\s+([A-Za-z_]\S*))?$/.exec(m[2]);
			if (r)
				deps.push({ name: r[1], as: r[2] || r[1].replace(/[^a-zA-Z0-9_]/g, '_') });
			else if (m[2] != 'use strict')
				break;
			rest = rest.slice(m[0].length);
		}
		return deps;
	}

	L.require = function(name) {
		if (classes[name])
			return Promise.resolve(classes[name]);
		var url = L.env.base_url + '/' + name.replace(/\./g, '/') + '.js';
		return fetch(url).then(function(res) {
			if (!res.ok)
				L.raise('NetworkError', 'HTTP error ' + res.status + ' while loading class file "' + url + '"');
			return res.text();
		}).then(function(source) {
			var deps = requires(source);
			return Promise.all(deps.map(function(d) { return L.require(d.name); })).then(function(instances) {
				var factory = new Function([ 'window', 'document', 'L' ].concat(deps.map(function(d) { return d.as; })).join(','),
					source + '\n//# sourceURL=' + url);
				var cls = factory.apply(factory, [ window, document, L ].concat(instances));
				if (!Class.isSubclass(cls))
					L.raise('TypeError', '"' + name + '" factory yields invalid constructor');
				return (classes[name] = new cls());
			});
		});
	};
})(window, document);
