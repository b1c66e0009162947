/* launch/selftest.c - the launch self-test's list of checks, and the guest
 * program that runs it (see selftest.h). */
#include "launch/selftest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch/state.h"
#include "proxy/proxy.h"

#define LIST_MAX 65536

/* The Node.js request, for images without curl: argv M H P PH, prints
 * "CODE FIRST-LINE" as the curl branch does (in sh single quotes: no '). */
#define NODE_ASK \
	"const [m,h,p,ph]=process.argv.slice(1),hd={Host:h};if(ph)hd.Authorization=\"Bearer \"+ph;" \
	"const q=require(\"https\").request({host:\"" PROXY_CHECK_ADDR "\",port:443," \
	"servername:\"" PROXY_CHECK_NAME "\",method:m,path:p,headers:hd},r=>{let b=\"\";" \
	"r.setEncoding(\"utf8\");r.on(\"data\",d=>b+=d);" \
	"r.on(\"end\",()=>console.log(r.statusCode+\" \"+b.split(\"\\n\")[0]))});" \
	"q.on(\"error\",e=>console.log(\"000 \"+e.message));" \
	"q.setTimeout(5000,()=>q.destroy(new Error(\"timed out\")));q.end();"

/* Two passes over the list: the first runs the plain checks, starts the
 * other TLS clients in the background and gathers every tls check into one
 * curl command (one process, one connection: the cost is one start); the
 * second compares each answer with what was due. */
const char selftest_script[] =
	"l=$1; n=" PROXY_CHECK_NAME "; a=" PROXY_CHECK_ADDR "\n"
	"ca=/etc/ssl/certs/kvmbox-ca.pem; b=/etc/ssl/certs/ca-certificates.crt\n"
	"js='" NODE_ASK "'\n"
	"st() { echo \"kvmbox: self-test: $1; the agent was not started\" >&2; rm -rf \"$t\"; exit 125; }\n"
	"have() { command -v \"$1\" >/dev/null 2>&1; }\n"
	/* nanoseconds: date's %N where it has one, else /proc/uptime (10 ms) */
	"ns() { s=$(date +%s%N 2>/dev/null); case $s in ''|*[!0-9]*) "
	"s=$(($(cut -d' ' -f1 /proc/uptime | tr -d .) * 10000000));; esac; echo $s; }\n"
	"t0=$(ns); k=0; i=0; nx=; timed=; set --\n"
	"t=$(mktemp -d 2>/dev/null) || st \"no temporary directory (mktemp -d) for the checks\"\n"
	"while read -r kind m h p ph want; do k=$((k + 1)); case $kind in\n"
	"http) u=http://$m/\n"
	"  if have curl; then o=$(curl -s -m 5 -o /dev/null -w '%{http_code}' $u 2>&1)\n"
	"  elif have nc; then o=$(printf 'GET / HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' $m | nc -w 5 $m 80 2>&1 | head -n 1)\n"
	"  else st \"no curl or nc in the image to ask $u with (--no-self-test launches without the check)\"; fi\n"
	"  case $o in *403*) ;; *) st \"$u was not refused by the egress policy (${o:-no answer})\";; esac;;\n"
	"ca) [ -s $ca ] || st \"the proxy's CA is not at $ca\"\n"
	"  grep -qxF \"$(sed -n 2p $ca)\" $b || st \"the system CA bundle lacks the proxy's CA\"\n"
	"  if have openssl && ! openssl verify -CAfile $b $ca >/dev/null 2>&1; then "
	"st \"OpenSSL does not trust the proxy's CA\"; fi\n"
	"  have curl || have node || st \"no curl or node in the image to reach the proxy with "
	"(--no-self-test launches without the check)\"\n"
	"  if have node; then node -e \"$js\" GET $n / '' </dev/null >$t/node 2>&1 & fi\n"
	"  if have git; then GIT_TERMINAL_PROMPT=0 git -c http.curloptResolve=$n:443:$a "
	"ls-remote https://$n/kvmbox-self-test.git </dev/null >$t/git 2>&1 & fi;;\n"
	"tls) i=$((i + 1)); [ \"$ph\" = - ] && ph=\n"
	"  if have curl; then set -- \"$@\" $nx -sS -m 5 --resolve $n:443:$a -X \"$m\" -H \"Host: $h\" "
	"${ph:+-H \"Authorization: Bearer $ph\"} -o $t/$i -w '%{http_code}\\n' \"https://$n$p\"; nx=--next\n"
	"  else node -e \"$js\" \"$m\" \"$h\" \"$p\" \"$ph\" </dev/null >$t/$i; fi;;\n"
	"time) timed=1;;\n"
	"*) st \"unknown check '$kind' in $l\";;\n"
	"esac; done <\"$l\"\n"
	"[ $# -gt 0 ] && curl \"$@\" >$t/codes 2>$t/err\n"
	"i=0; while read -r kind m h p ph want; do [ $kind = tls ] || continue; i=$((i + 1))\n"
	"  if [ -f $t/codes ]; then o=\"$(sed -n ${i}p $t/codes) $(head -n 1 $t/$i 2>/dev/null)\"; "
	"else o=$(head -n 1 $t/$i); fi\n"
	"  case $o in '000 '*) o=\"$o$(head -n 1 $t/err)\";; esac\n"
	"  case $o in $want) ;; *) [ \"$ph\" = - ] && ph=; st \"$m https://$h$p${ph:+ with placeholder $ph} was "
	"answered '$o' where '$want' was due\";; esac\n"
	"done <\"$l\"\n"
	"wait\n"
	"if [ -f $t/node ]; then case $(head -n 1 $t/node) in \"200 \"*) ;; "
	"*) st \"Node.js did not get through to the proxy over TLS ($(head -n 1 $t/node))\";; esac; fi\n"
	/* git too old for curloptResolve looks the name up, and cannot be asked */
	"if [ -f $t/git ] && grep -q 'unable to access' $t/git && ! grep -q 'resolve host' $t/git; then "
	"st \"git does not trust the proxy's CA ($(grep -m 1 'unable to access' $t/git))\"; fi\n"
	"rm -rf \"$t\"\n"
	"[ -n \"$timed\" ] && echo \"kvmbox: self-test: $k checks in $((($(ns) - t0) / 1000000)) ms\" >&2\n"
	"exit 0\n";

struct list {
	char *buf;
	size_t len;
	int err;
};

static void add(struct list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct list *l, const char *fmt, ...)
{
	if (l->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->buf + l->len, LIST_MAX - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= LIST_MAX - l->len)
		l->err = -ENOSPC;
	else
		l->len += (size_t)n;
}

/* The first of e's hosts that is a name (no pattern, no address): the host
 * a request may name to stand for it, or NULL. */
static const char *plain_host(const struct secret *e)
{
	unsigned char b[16];
	for (unsigned i = 0; i < e->nhosts; i++) {
		const char *h = e->hosts[i];
		if (!strchr(h, '*') && inet_pton(AF_INET, h, b) != 1 && inet_pton(AF_INET6, h, b) != 1)
			return h;
	}
	return NULL;
}

/* A placeholder toward its own host: substituted (never, for a refresh
 * token) when the policy permits the host, else the policy's 403. */
static void add_own_host(struct list *l, const struct selftest_in *in, const struct secret *e,
			 const char *host)
{
	if (!in->egress || !policy_allows_name(in->egress, host))
		add(l, "tls GET %s / %s 403 kvmbox: egress to %s is not allowed*\n", host, e->placeholder, host);
	else
		add(l, "tls GET %s / %s 200 kvmbox self-test: %s: substituted=%d unchanged=%d\n", host,
		    e->placeholder, host, !e->refresh_only, e->refresh_only);
}

int selftest_write_list(const char *dir, const struct selftest_in *in)
{
	struct list l = { .buf = malloc(LIST_MAX) };
	if (!l.buf)
		return -ENOMEM;
	if (in->refuses_metadata)
		add(&l, "http 169.254.169.254\n");
	if (in->refuses_host)
		add(&l, "http 10.0.2.2\n");
	add(&l, "ca\n");
	bool other_done = false;
	for (unsigned i = 0; in->secrets && i < in->secrets->n; i++) {
		const struct secret *e = &in->secrets->v[i];
		const char *host = plain_host(e);
		if (!host)
			continue;
		add_own_host(&l, in, e, host);
		/* a name that only begins with its host's: left as it is */
		if (!other_done && !e->refresh_only && strlen(host) + sizeof(PROXY_CHECK_NAME) < 254) {
			add(&l, "tls GET %s." PROXY_CHECK_NAME " / %s 200 kvmbox self-test: %s." PROXY_CHECK_NAME
				": substituted=0 unchanged=1\n", host, e->placeholder, host);
			other_done = true;
		}
	}
	/* a push to a repository off the allow-list, as git sends it */
	add(&l, "tls POST github.com /kvmbox-self-test/off-list.git/git-receive-pack - 403 *\n");
	if (in->timed)
		add(&l, "time\n");
	int r = l.err ? l.err : state_write_file(dir, SELFTEST_LIST, l.buf);
	free(l.buf);
	return r;
}
