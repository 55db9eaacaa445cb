/* How long ipx's locks spin before sleeping on the futex.
 *
 * A waiter spins up to IPX__SPIN_DEFAULT rounds (each one load and a CPU
 * pause, about 30-50 ns on current x86, so 1.5-5 us in all): long enough to
 * cover a typical critical section of another CPU, short against a futex
 * sleep + wake (several us).  A thread whose CPU affinity allows only one
 * CPU never spins: whoever it waits for cannot run while it spins.  The
 * affinity is read once per thread, at its first wait. */
#ifndef IPX_SYNC_SPIN_H
#define IPX_SYNC_SPIN_H

#define IPX__SPIN_DEFAULT 100u

/* Spin rounds + 1 for this thread; 0 = not yet decided. */
extern __thread unsigned ipx__spin_tls
    __attribute__((tls_model("initial-exec")));

unsigned ipx__spin_init(void);

static inline unsigned ipx__spin_count(void) {
  unsigned v = ipx__spin_tls;
  if (__builtin_expect(v == 0, 0)) v = ipx__spin_init();
  return v - 1;
}

#endif /* IPX_SYNC_SPIN_H */
