/* net/internal.h - the stack's private structures, shared by its files.
 *
 * Memory: the flow tables and every per-flow buffer are allocated when the
 * stack is created or when a flow opens, never per packet.  Frames for the
 * guest are built in ns->tx (the stack is single-threaded) and handed to the
 * output callback.
 */
#ifndef KVMBOX_NET_INTERNAL_H
#define KVMBOX_NET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "net/hdr.h"
#include "net/net.h"

#define NET_FRAME_MAX (65535 + 14 + 40)	/* an IPv6 packet with a 64 KiB payload */
#define ETH_HLEN_ 14
#define IP4_HLEN 20
#define TCP_HLEN 20
#define UDP_HLEN 8

#define NET_TICK_NS (10 * 1000000ull)	/* timer granularity */
#define NET_NEVER UINT64_MAX		/* no deadline */

#define TCP_MAX_FLOWS 1024
#define TCP_HASH 2048
#define TCP_TO_GUEST_BUF (1u << 20)	/* host->guest bytes unacked by the guest, plus unsent */
#define TCP_TO_HOST_BUF (256u << 10)	/* guest->host bytes the host socket has not taken */
#define TCP_WSCALE 7
#define TCP_RTO_MIN_NS (200 * 1000000ull)
#define TCP_RTO_MAX_NS (30 * 1000000000ull)
#define TCP_SYN_RETRIES 6
#define TCP_MAX_RETRIES 12
#define TCP_KEEPALIVE_IDLE_NS (60 * 1000000000ull)
#define TCP_KEEPALIVE_INTVL_NS (10 * 1000000000ull)
#define TCP_KEEPALIVE_PROBES 9
/* Delayed ACK bound: an ACK for a small pushed segment waits this long for
 * host data to ride on (the reply of a request/response exchange). */
#define TCP_DELACK_NS (1 * 1000000ull)
#define TCP_OOO_MAX 64		/* out-of-order ranges held per flow (SACK receive side) */
#define TCP_SACK_BLOCKS 4	/* most SACK blocks sent in one ACK (no timestamps) */

#define IP4_FRAG_SLOTS 8		/* IPv4 datagrams being reassembled at once */
#define IP4_FRAG_TIMEOUT_NS (15 * 1000000000ull)
#define IP4_FRAG_PAYLOAD_MAX (65535 - IP4_HLEN)

/* One IPv4 datagram being reassembled (net/frag.c). */
struct ip4_frag {
	bool used, have_first;
	uint8_t proto;
	uint16_t id;
	uint32_t src, dst;
	uint64_t first_ns;
	uint32_t total;		/* payload length, known once the last fragment came; 0 before */
	uint32_t got, max_end;	/* payload bytes held; end of the furthest fragment */
	unsigned nfrags;
	uint8_t map[(IP4_FRAG_PAYLOAD_MAX + 63) / 64];	/* one bit per 8-byte block held */
	uint8_t buf[IP4_HLEN + IP4_FRAG_PAYLOAD_MAX];	/* header (from offset 0) + payload */
};

/* dgram.c: flows of datagrams to host sockets, UDP and ICMP echo, in one
 * table; each kind has a cap and an idle time. */
enum dgram_kind { DGRAM_UDP, DGRAM_ICMP };
#define UDP_MAX_FLOWS 512
#define UDP_IDLE_NS (60 * 1000000000ull)
#define ICMP_MAX_FLOWS 32		/* pings beyond the gateway in flight: (echo id, remote) */
#define ICMP_IDLE_NS (30 * 1000000000ull)
#define DGRAM_MAX_FLOWS (UDP_MAX_FLOWS + ICMP_MAX_FLOWS)

/* One guest key -> one connected host socket (dgram.c says the states). */
struct dgram_flow {
	bool used;
	bool pending;		/* io_uring still holds op */
	enum dgram_kind kind;
	bool v6;
	int fd;
	uint32_t rip;		/* remote address as the guest sees it (IPv4, host order) */
	uint8_t gip6[16], rip6[16];	/* guest and remote (IPv4-mapped for IPv4): the key */
	/* UDP: the guest's and the remote's ports.  ICMP: gport is the
	 * guest's echo identifier, rport 0. */
	uint16_t gport, rport;
	uint64_t last_ns;
	struct net_stack *ns;
	struct loop_op op;
	/* A published UDP port: fd is -1, datagrams from the guest go back to
	 * peer through the publish socket pub_fd. */
	bool published;
	int pub_fd;
	struct sockaddr_in peer;
};

#define PUBLISH_MAX 32

/* The network-layer facts an L4 handler needs, for either family.  IPv4
 * addresses also appear in the 16-byte fields as ::ffff:a.b.c.d. */
struct l3 {
	bool v6;
	uint32_t src4, dst4;		/* IPv4, host order */
	uint8_t src[16], dst[16];
	const uint8_t *hdr;		/* the network header (for ICMP errors) */
	size_t pktlen;			/* header + payload */
};

#define IP6_HLEN 40

enum tcp_state {
	TS_FREE = 0,
	TS_CONNECTING,		/* guest SYN seen, host connect() in progress */
	TS_SYN_RCVD,		/* SYN-ACK sent to the guest */
	TS_SYN_SENT,		/* published port: our SYN sent to the guest */
	TS_ESTABLISHED,	/* data both ways; FIN state kept in flags */
	TS_DEAD,		/* closed; waiting for io_uring to let go of the slot */
};

struct net_stack;

/* One guest TCP connection and its host side (socket or stream). */
struct tcp_flow {
	enum tcp_state state;
	struct net_stack *ns;
	int idx;		/* slot number */
	int hnext;		/* hash chain */
	uint32_t gip, rip;	/* guest address; remote address as the guest sees it */
	uint16_t gport, rport;
	bool v6;
	uint8_t gip6[16], rip6[16];	/* the same as 16 bytes (IPv4-mapped for IPv4): the key */
	int fd;			/* host socket, or -1 for a stream flow */
	bool is_stream, stream_closed;
	bool want_rd, want_wr;	/* a stream flow's consumer waits for these */
	bool room_wait;		/* data held back: the guest had no buffers */
	struct stream stream;
	struct loop_op rd_op, wr_op;
	bool rd_pending, wr_pending, rd_armed;

	/* Send side (to the guest). */
	uint32_t iss, snd_una, snd_nxt, snd_wnd, tg_end;	/* tg_end: seq after the last buffered byte */
	uint8_t snd_wscale, rcv_wscale;
	uint16_t mss;
	bool wscale_ok;
	uint8_t *tg_buf;	/* TCP_TO_GUEST_BUF ring indexed by seq - iss - 1 */
	unsigned dupacks;
	bool in_recovery;	/* NewReno: after a fast retransmit, until recover is acked */
	uint32_t recover;
	uint64_t rto_ns, rto_at;	/* rto_at 0: no timer */
	unsigned retries;

	/* Receive side (from the guest). */
	uint32_t irs, rcv_nxt, adv_wnd;	/* adv_wnd: right edge last advertised (seq) */
	uint8_t *th_buf;	/* TCP_TO_HOST_BUF ring */
	uint32_t th_head, th_len;	/* th_head + th_len is where rcv_nxt's byte goes */
	/* Out-of-order data from the guest waits in th_buf at its place after
	 * the in-order bytes (inside the advertised window, so it always fits);
	 * ooo[] lists the ranges held, sorted, disjoint, all beyond rcv_nxt. */
	struct { uint32_t start, end; } ooo[TCP_OOO_MAX];
	uint8_t nooo;
	bool ooo_fin;		/* a FIN arrived out of order at ooo_fin_seq */
	uint32_t ooo_fin_seq;
	uint32_t sack_recent;	/* start of the latest out-of-order segment (first SACK block) */
	/* D-SACK (RFC 2883): bytes the guest sent twice, reported once as the
	 * first SACK block of the next ACK, so its sender learns that a
	 * retransmission was spurious (reordering, not loss) and waits longer
	 * before the next one. */
	bool dsack;
	uint32_t dsack_start, dsack_end;
	bool sack_ok;		/* both sides sent SACK-permitted */

	bool host_eof;		/* host socket read EOF (or stream shutdown): FIN due */
	bool fin_sent, fin_acked;
	bool guest_fin;		/* FIN received from the guest */
	bool host_shut;		/* shutdown(SHUT_WR) done on the host socket */
	bool ack_pending;	/* an ACK is owed: at the next net_flush(), or at delack_at */
	bool in_ack_list;	/* kept across slot reuse: the list may still name the slot */
	uint64_t delack_at;	/* 0: ack at the next flush; else not before this time */
	uint32_t ack_sent;	/* rcv_nxt carried by the last ACK sent */
	bool rd_full;		/* host reads stopped because tg_buf was full */
	uint64_t last_rx_ns;	/* keepalive */
	unsigned ka_probes;
};

/* A published port: a host listener whose connections go to the guest. */
struct publish {
	int fd;
	bool udp;
	uint16_t host_port, guest_port;
	struct loop_op op;
	struct net_stack *ns;
};

/* DNS lookups run getaddrinfo on one worker thread (it reads /etc/hosts
 * and the host's resolver configuration like any host program). */
#define DNS_QUEUE 64
struct dns_req {
	bool busy, done;
	uint16_t gport;		/* guest source port */
	bool v6;		/* asked over IPv6: answer from gw6 to gsrc6 */
	uint8_t gsrc6[16];
	uint16_t qtype;
	uint8_t query[512];	/* the guest's query, echoed in the answer */
	uint16_t qlen, qend;	/* length, end of the question section */
	char name[256];
	int nanswers;
	uint8_t answers[16][16];
	int err;
};

struct dns_state {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool quit;
	int efd;		/* worker -> loop completion signal */
	struct loop_op op;
	struct dns_req req[DNS_QUEUE];
};

#define NET_DENIED_LOGGED 4096

struct net_stack {
	struct loop *loop;
	struct net_config cfg;
	struct policy *policy;
	net_output_fn output;
	net_output_gso_fn gso_output;	/* NULL: no segmentation offload */
	net_room_fn room;		/* NULL: the transport takes every frame */
	bool room_wanted;		/* a flow waits for net_guest_room */
	unsigned offloads;		/* NET_OFFLOAD_*: atomic, net_offloads() reads it */
	struct net_gso tx_gso;		/* offloads of the frame being sent, when tx_offload */
	bool tx_offload;
	void *out_opaque;
	uint8_t guest_mac[6];
	bool guest_mac_known;
	struct net_stats stats;

	net_stream_handler_fn stream_fn;
	void *stream_opaque;

	struct tcp_flow *tcp;
	int tcp_hash[TCP_HASH];
	uint16_t next_port;	/* source ports for published connections */
	uint64_t isn_key[2];	/* initial sequence numbers (RFC 6528) */
	int ack_list[TCP_MAX_FLOWS];	/* flows with ack_pending */
	unsigned nack;
	struct loop_op delack_op;	/* one timer for every delayed ACK */
	struct __kernel_timespec delack_ts;
	bool delack_armed, delack_cancelling;
	struct dgram_flow *dgram;	/* DGRAM_MAX_FLOWS: UDP and ICMP echo flows */
	struct publish pub[PUBLISH_MAX];
	unsigned npub;
	struct dns_state dns;

	/* IPv6: router link-local fe80::1, prefix NET_PREFIX6/64 for SLAAC,
	 * and the prefix's ::2 standing for the host like gateway_ip. */
	uint8_t gw6_ll[16], gw6[16], prefix6[16];
	bool ra_sent;

	/* One timer for every deadline the stack keeps (retransmission,
	 * keepalive, idle UDP/ICMP flows, fragments): armed only while some
	 * deadline exists, for the earliest one (net_timer_need), so an idle
	 * stack wakes nobody. */
	struct loop_op tick_op;
	struct __kernel_timespec tick_ts, tick_upd_ts;
	bool tick_armed;
	uint64_t tick_at;	/* when the armed timer fires (ns, as now) */
	uint64_t now;
	bool destroying;

	/* Destinations (address, protocol) whose denial was logged: each is
	 * logged once for the life of the sandbox, however long a scan goes on
	 * (an open-addressed set of 64-bit hashes, 0 = free; once full, one
	 * line says so and later destinations are only counted). */
	uint64_t denied_seen[NET_DENIED_LOGGED];
	unsigned denied_nseen;
	bool denied_full_logged;
	/* ... and the summary's table (net_denials) */
	struct net_denial denials[NET_DENIALS_KEPT];
	unsigned ndenials;
	uint64_t denials_other;

	struct ip4_frag *frag;		/* IP4_FRAG_SLOTS, allocated with the stack */
	uint16_t ip_id;			/* identification of our fragmented packets */

	uint8_t tx[NET_FRAME_MAX];
	uint8_t frag_tx[NET_FRAME_MAX];	/* one fragment of tx being sent */
};

/* csum.c */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
uint16_t csum_fold(uint32_t sum);
uint32_t csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
uint32_t csum_pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t len);


#define ETH_P_IP_ 0x0800
#define ETH_P_ARP_ 0x0806
extern const uint8_t net_bcast_mac[6];	/* ff:ff:ff:ff:ff:ff */

/* stack.c: send ns->tx (len bytes from the Ethernet header, whose
 * addresses and type this fills). */
void net_eth_send(struct net_stack *ns, const uint8_t *dst_mac, uint16_t type, size_t len);
/* A deadline at `when` (ns, as ns->now) now exists: make sure the stack's
 * timer fires by then (within NET_TICK_NS). */
void net_timer_need(struct net_stack *ns, uint64_t when);
/* NET_OFFLOAD_* the far side of the GSO output takes now (0 without one). */
unsigned net_offloads(const struct net_stack *ns);

/* ip4.c: a frame's IPv4 packet or ARP message from the guest. */
void ip4_input(struct net_stack *ns, const uint8_t *ip, size_t len);
void arp_input(struct net_stack *ns, const uint8_t *a, size_t len);
/* Start an IPv4 packet to the guest in ns->tx; returns the L4 header. */
uint8_t *net_ip4_begin(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t proto);
/* Finish and send it with l4len bytes after the IPv4 header (fills the IP
 * header checksum; L4 checksums are the caller's). */
void net_ip4_send(struct net_stack *ns, size_t l4len);
void net_send_icmp_unreach(struct net_stack *ns, const uint8_t *ip, size_t iplen, uint8_t code);
/* IPv6 counterparts (ip6.c). */
uint8_t *net_ip6_begin(struct net_stack *ns, const uint8_t *src, const uint8_t *dst, uint8_t proto);
void net_ip6_send(struct net_stack *ns, size_t l4len);
void net_send_icmp6_unreach(struct net_stack *ns, const struct l3 *l3, uint8_t code);
void ip6_input(struct net_stack *ns, const uint8_t *ip, size_t len);
void ip6_init(struct net_stack *ns);
/* egress.c: an ICMP/ICMPv6 "administratively prohibited" for a denied
 * packet. */
void net_send_denied(struct net_stack *ns, const struct l3 *l3);
/* The host-side IPv4 for a guest destination (gateway -> 127.0.0.1). */
uint32_t net_host_dst(struct net_stack *ns, uint32_t rip);
/* A host sockaddr for a guest destination of either family (the gateway
 * addresses become the host's loopback): its length. */
socklen_t net_host_sockaddr(struct net_stack *ns, bool v6, uint32_t rip, const uint8_t *rip6,
			    uint16_t port, struct sockaddr_storage *ss);
bool net_dst_allowed(struct net_stack *ns, const uint8_t *dst16, enum policy_group *why);

/* frag.c */
int ip4_frag_init(struct net_stack *ns);
void ip4_frag_fini(struct net_stack *ns);
/* A guest fragment (header already checked): the whole datagram (header
 * without options + payload, valid until the next net_input()) once
 * complete, else NULL. */
const uint8_t *ip4_frag_input(struct net_stack *ns, const uint8_t *ip, size_t ihl, size_t tot,
			      size_t *outlen);
/* Expire what is due; the next deadline, or NET_NEVER (so for every *_tick). */
uint64_t ip4_frag_tick(struct net_stack *ns);
/* Send the packet in ns->tx (Ethernet header filled in) as fragments. */
void ip4_fragment_send(struct net_stack *ns, size_t l3len);

/* dgram.c */
int dgram_init(struct net_stack *ns);
void dgram_fini(struct net_stack *ns);
/* Close idle flows; the next deadline. */
uint64_t dgram_tick(struct net_stack *ns);
/* The open flow of kind for this key (v6: the packet's family), or NULL. */
struct dgram_flow *dgram_find(struct net_stack *ns, enum dgram_kind kind, bool v6, uint16_t gport,
			      const uint8_t *rip6, uint16_t rport);
/* A free slot for a new flow of kind, zeroed but for kind, ns, last_ns and
 * fd = -1; or NULL, having recycled the kind's least recently used flow
 * when the kind is at its cap. */
struct dgram_flow *dgram_slot(struct net_stack *ns, enum dgram_kind kind);
/* A new flow on a host socket connected to l3's destination (rport for
 * UDP), readable calling `readable`; NULL when none can be had now. */
struct dgram_flow *dgram_open(struct net_stack *ns, enum dgram_kind kind, const struct l3 *l3,
			      uint16_t gport, uint16_t rport, loop_cb readable);
/* The first step of a flow's readable callback: whether it should read. */
bool dgram_poll_done(struct dgram_flow *f, struct loop_op *op, int res, uint32_t flags);
void dgram_close(struct dgram_flow *f);

/* icmp.c */
/* A guest echo request (checksum verified) for an address beyond the
 * gateway (IPv4) or the router (IPv6). */
void icmp_echo_forward(struct net_stack *ns, const struct l3 *l3, const uint8_t *icmp, size_t len);

/* tcp.c */
int tcp_init(struct net_stack *ns);
void tcp_fini(struct net_stack *ns);
void tcp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *seg, size_t len);
uint64_t tcp_tick(struct net_stack *ns);
void tcp_flush(struct net_stack *ns);
/* Send on the flows that waited for the guest's buffers (room_wait). */
void tcp_room(struct net_stack *ns);
int tcp_accept_published(struct net_stack *ns, int fd, uint16_t guest_port);
/* A flow the guest knows of, as a snapshot keeps it (net/snapshot.c). */
struct tcp_saved {
	uint8_t gip6[16], rip6[16];
	uint32_t gip, rip;
	uint32_t snd_nxt, rcv_nxt;
	uint16_t gport, rport;
	uint8_t v6, pad[3];
};
/* The flows the guest has heard of (SYN answered or sent, established),
 * at most cap of them. */
unsigned tcp_save_flows(const struct net_stack *ns, struct tcp_saved *out, unsigned cap);
/* Tell the guest a saved flow is gone: a RST as the flow would send it. */
void tcp_reset_saved(struct net_stack *ns, const struct tcp_saved *s);

/* udp.c */
void udp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *dgram, size_t len);
/* The UDP publish socket fd is readable: datagrams to guest_port. */
void udp_publish_input(struct net_stack *ns, int fd, uint16_t guest_port);
void udp_send_to_guest(struct net_stack *ns, uint32_t src, uint16_t sport, uint16_t dport,
		       const void *data, size_t len);
void udp6_send_to_guest(struct net_stack *ns, const uint8_t *src, const uint8_t *dst,
			uint16_t sport, uint16_t dport, const void *data, size_t len);

/* dhcp.c */
void dhcp_input(struct net_stack *ns, const uint8_t *payload, size_t len);

/* dns.c */
int dns_init(struct net_stack *ns);
void dns_fini(struct net_stack *ns);
void dns_input(struct net_stack *ns, const struct l3 *l3, uint16_t sport, const uint8_t *q, size_t len);
/* Parse the question of a DNS message: 0 or -EINVAL. */
int dns_parse_question(const uint8_t *m, size_t len, char name[256], uint16_t *qtype,
		       uint16_t *qend);

#endif
