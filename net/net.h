/* net/net.h - the user-mode TCP/IP stack: frames in, frames out, flows to
 * host sockets or to stream consumers.
 *
 * The stack plays the router and every remote host for one guest on a
 * private Ethernet segment.  Frames from the guest go in through net_input();
 * frames for the guest leave through the output callback.  The guest's TCP
 * connections are terminated here and re-opened from non-blocking host
 * sockets (or handed as a struct stream to a consumer such as the TLS
 * proxy); UDP is NATed to connected host sockets; DHCPv4 and a DNS
 * forwarder answer on the gateway address.  Every new flow is checked
 * against the egress policy (net/policy.h).  Everything runs on one
 * io_uring loop (common/loop.h); nothing here is thread-safe.
 */
#ifndef KVMBOX_NET_NET_H
#define KVMBOX_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "net/policy.h"
#include "common/stream.h"

struct net_stack;

/* Addressing of the guest segment (IPv4 in host byte order). */
struct net_config {
	uint32_t guest_ip;	/* handed out by DHCP, default 10.0.2.15 */
	uint32_t gateway_ip;	/* router, DNS server, the host (default 10.0.2.2) */
	uint32_t netmask;	/* default 255.255.255.0 */
	uint8_t gateway_mac[6];	/* the stack's MAC */
	unsigned mtu;		/* 576..65520, default 1500; told to the guest by DHCP */
	struct policy *policy;	/* egress policy, owned by the caller, required */
};

/* Counters; every dropped frame lands in exactly one drop_* counter
 * (drop_ip_frag: fragments dropped, also those of abandoned datagrams). */
struct net_stats {
	uint64_t rx_frames, tx_frames, tx_dropped;
	uint64_t drop_short, drop_eth, drop_arp, drop_ip_hdr, drop_ip_csum, drop_ip_frag;
	uint64_t drop_ip_src, drop_proto, drop_icmp, drop_udp, drop_tcp, drop_tcp_csum;
	uint64_t drop_nomem;
	uint64_t denied_tcp, denied_udp, dns_queries, dns_refused;
	uint64_t denied_icmp;		/* pings beyond the gateway the policy refused */
	uint64_t tcp_flows, udp_flows, tcp_retrans, tcp_fast_retrans;
	/* Guest segments held out of order (SACKed), and those dropped because
	 * the flow already held TCP_OOO_MAX separate ranges. */
	uint64_t tcp_ooo_queued, drop_tcp_ooo;
	uint64_t ip_frag_reassembled;	/* guest IPv4 datagrams put back together */
};

/* Frames for the guest.  frame is valid only during the call. */
typedef void (*net_output_fn)(void *opaque, const void *frame, size_t len);

/* Segmentation and checksum offload towards the guest: a transport that can
 * split TCP super-segments and complete checksums (TAP with IFF_VNET_HDR,
 * virtio-net with GUEST_TSO4/6 and GUEST_CSUM) sets a GSO output; the stack
 * then sends every TCP segment with data through it, with the TCP checksum
 * partial (pseudo-header sum over the whole length in the field, to be
 * completed from csum_start + csum_offset, per segment when split):
 * gso_size is the MSS for a super-segment of up to 64 KiB, or 0 for a
 * segment that needs no splitting (checksum offload only, like
 * VIRTIO_NET_HDR_GSO_NONE with NEEDS_CSUM).  Other frames still go through
 * net_output_fn. */
struct net_gso {
	uint16_t gso_size;
	uint16_t csum_start, csum_offset;	/* from the start of the frame */
	uint16_t hdr_len;			/* Ethernet + IP + TCP headers */
	bool v6;
};
typedef void (*net_output_gso_fn)(void *opaque, const void *frame, size_t len, const struct net_gso *g);
/* Set the GSO output; the far side then takes every offload
 * (NET_OFFLOAD_ALL, as a TAP with IFF_VNET_HDR does) until
 * net_set_offloads says otherwise. */
void net_set_gso_output(struct net_stack *ns, net_output_gso_fn fn);

/* Which of the GSO output's offloads the far side accepts: the stack builds
 * each frame accordingly, so no transport re-cuts segments or completes
 * checksums.  Without NET_OFFLOAD_CSUM every checksum is complete and
 * frames go through net_output_fn; without the family's TSO bit TCP data
 * goes in MSS-sized segments.  A TSO bit without CSUM counts as none.  A
 * virtio-net device sets what the guest's driver acked (GUEST_CSUM,
 * GUEST_TSO4/6) at DRIVER_OK and 0 at a reset.  Any thread may call it; the
 * next frame built follows it. */
#define NET_OFFLOAD_CSUM 1u	/* partial TCP checksums (gso_size 0) */
#define NET_OFFLOAD_TSO4 2u	/* IPv4 TCP super-segments */
#define NET_OFFLOAD_TSO6 4u	/* IPv6 TCP super-segments */
#define NET_OFFLOAD_ALL 7u
void net_set_offloads(struct net_stack *ns, unsigned offloads);

/* Room towards the guest.  A transport whose receive buffers can run out
 * (virtio-net: the guest posts them) sets a room function; the stack asks
 * it before each segment of TCP data and, told no, keeps the data in the
 * flow's buffer instead of sending a frame the transport would drop (and
 * the flow would have to retransmit).  room(opaque, len) is called on the
 * loop thread with the frame's length (an upper bound) and says whether a
 * frame that long would be taken now; after a no, the transport calls
 * net_guest_room() once the guest has posted buffers, and the flows that
 * waited send on.  Without a room function every frame is sent. */
typedef bool (*net_room_fn)(void *opaque, size_t len);
void net_set_room(struct net_stack *ns, net_room_fn fn);
void net_guest_room(struct net_stack *ns);

/* One frame from a sender that puts a virtio-net header before it (a
 * virtio-net driver, 12 bytes with num_buffers; a TAP with IFF_VNET_HDR,
 * 10): a checksum left partial (NEEDS_CSUM) is completed, then the frame
 * goes to net_input (a TSO segment of up to 64 KiB whole).  0, or -EINVAL
 * when there is no whole Ethernet header or the checksum offsets fall
 * outside the frame.  The caller calls net_flush after its batch. */
int net_input_vnet(struct net_stack *ns, uint8_t *buf, size_t len, size_t hdr_len);

/* Complete a partial checksum in a frame (virtio-net NEEDS_CSUM semantics:
 * the one's complement sum from start to the end, stored at start + off):
 * 0 or -EINVAL if the offsets do not fit the frame. */
int net_finish_csum(uint8_t *frame, size_t len, uint16_t start, uint16_t off);

/* Decide, for a new guest TCP flow to dst:port (16 bytes, IPv4 as
 * ::ffff:a.b.c.d, see policy_addr_to_v4), where it ends:
 *   1  a stream consumer kept s (see common/stream.h);
 *   2  the handler put in *sock a connected stream socket (a socketpair's
 *      end handed to another process, say), and the flow is spliced to it
 *      exactly as to a host connection, the egress policy having been the
 *      handler's to apply; the stack owns *sock from then on;
 *   0  the flow goes to a host socket (after the policy check);
 *   <0 a negative errno: it is refused with a RST.
 * Runs on the loop thread, for IPv4 and IPv6 flows alike. */
typedef int (*net_stream_handler_fn)(void *opaque, const uint8_t dst[16], uint16_t dst_port,
				     struct stream *s, int *sock);

void net_config_default(struct net_config *cfg);

/* 0 or -errno.  The stack registers its timer on loop at once. */
int net_create(struct net_stack **out, struct loop *loop, const struct net_config *cfg,
	       net_output_fn output, void *opaque);
/* Closes every flow and host socket; the loop must not run it again. */
void net_destroy(struct net_stack *ns);

/* One Ethernet frame from the guest (no FCS).  Never fails: bad frames are
 * counted and dropped. */
void net_input(struct net_stack *ns, const void *frame, size_t len);

/* Send what net_input() deferred (ACKs for received data are coalesced
 * over a batch of frames).  Call after each batch of net_input() calls,
 * e.g. when the TAP or the virtqueue has no more frames; the stack's own
 * timer flushes too (within 10 ms) but that is a latency floor. */
void net_flush(struct net_stack *ns);

void net_set_stream_handler(struct net_stack *ns, net_stream_handler_fn fn, void *opaque);

/* Publish a guest port on the host: "[ADDR:]HOSTPORT:GUESTPORT[/udp|/tcp]";
 * ADDR defaults to 127.0.0.1.  0, -EINVAL for a bad spec, or -errno. */
int net_publish(struct net_stack *ns, const char *spec);
/* --auto-publish: the ports already tried, and how many of them failed
 * (only the first NET_AUTOPUB_LOGGED failures are logged, so a guest that
 * claims every port cannot flood the log). */
#define NET_AUTOPUB_LOGGED 8
struct net_autopub {
	uint8_t tried[65536 / 8];
	unsigned failures;
};
/* Publish each of the guest's listening TCP ports[0..n) not tried before
 * on the host's 127.0.0.1 at the same number.  A port stays published when
 * its listener goes (connections then get a RST from the guest). */
void net_autopublish(struct net_stack *ns, struct net_autopub *ap, const uint16_t *ports,
		     unsigned n);
/* Parse such a spec without opening anything: 0 or -EINVAL. */
int net_parse_publish(const char *spec, uint32_t *addr, uint16_t *hport, uint16_t *gport, bool *udp);

/* Snapshots (net/snapshot.c): what the guest knows of the stack.  The host
 * side (sockets, the stream to the proxy) cannot cross a restore, so a
 * restored stack starts empty and ends each connection the guest had with
 * a RST rather than leaving the guest to wait on a peer that is gone.
 * net_snapshot_save: the guest's MAC and each of its TCP connections
 * (addresses, ports, sequence numbers) into buf: bytes written, at most
 * NET_SNAPSHOT_MAX.  net_snapshot_restore: into a fresh stack on the loop
 * thread (the guest's card running): take the MAC back and reset each
 * connection.  0, or -EINVAL for bytes that are not such a state. */
#define NET_SNAPSHOT_MAX (16u + 1024u * 56u)
size_t net_snapshot_save(const struct net_stack *ns, void *buf);
int net_snapshot_restore(struct net_stack *ns, const void *buf, size_t len);

const struct net_stats *net_get_stats(const struct net_stack *ns);

/* What the egress policy refused, for the summary at exit: the first
 * NET_DENIALS_KEPT (destination, port, protocol) triples, or names the DNS
 * forwarder refused, with how often each was refused; later ones are only
 * counted (*others). */
#define NET_DENIALS_KEPT 32
struct net_denial {
	uint8_t dst[16];	/* IPv4 as ::ffff:a.b.c.d; zero for a name */
	uint16_t port;		/* 0 for ICMP */
	char proto[5];		/* "tcp", "udp", "icmp", "dns" */
	char name[254];		/* "dns": the name refused, lower case */
	uint8_t group;		/* enum policy_group: why */
	uint32_t count;
};
unsigned net_denials(const struct net_stack *ns, const struct net_denial **out, uint64_t *others);

/* Note a refusal (the stack's own, or a stream handler's): logged once per
 * destination (address, protocol) for the life of the stack, however long
 * a scan goes on, and counted in the summary. */
void net_note_denied(struct net_stack *ns, const char *proto, const uint8_t dst[16], uint16_t port,
		     enum policy_group why);

/* Note a name the DNS forwarder refused (not permitted by the profile),
 * counted in the summary like an address. */
void net_note_denied_name(struct net_stack *ns, const char *name);

/* One denial as "ADDR:PORT/PROTO xCOUNT (why; remedy)" or "NAME/dns xCOUNT
 * (...)" into out: snprintf's result. */
int net_denial_text(const struct net_stack *ns, const struct net_denial *d, char *out, size_t outsz);

/* "ADDR:PORT/PROTO xCOUNT (why; remedy), NAME/dns xCOUNT (...), ..." for the denials into out (cut with
 * "..." when full): the number of refusals, or 0 when there were none. */
uint64_t net_denials_line(const struct net_stack *ns, char *out, size_t outsz);

/* Parse "a.b.c.d" into host order: 0 or -EINVAL. */
int net_parse_ip4(const char *s, uint32_t *out);

#endif
