/* How long ipx's locks spin before sleeping on the futex.
 *
 * A mutex waiter spins up to IPX__SPIN_MUTEX rounds, a semaphore or
 * condition waiter up to IPX__SPIN_WAIT rounds; a round is one load and a
 * CPU pause (about 10-40 ns on current x86 depending on the model).  The
 * mutex spin is short: on the 2-core test VM its length (0, 5, 20, 100)
 * made no difference to the two-process contended throughput beyond the
 * run-to-run noise, so it is kept to what covers a critical section of a
 * few hundred ns without burning a CPU for long.  Semaphore and condition
 * waiters wait for an event from another CPU, where a longer spin saves
 * the futex sleep + wake (several us, far more on a virtual machine).
 *
 * A thread whose CPU affinity allows only one CPU never spins: whoever it
 * waits for cannot run while it spins.  The affinity is read once per
 * thread, at its first wait, and again in a fork child; a thread re-pinned
 * later keeps its first decision. */
#ifndef IPX_SYNC_SPIN_H
#define IPX_SYNC_SPIN_H

#define IPX__SPIN_MUTEX 20u
#define IPX__SPIN_WAIT 100u

/* 1 + (1 if this thread may spin, else 0); 0 = not yet decided. */
extern __thread unsigned ipx__spin_tls
    __attribute__((tls_model("initial-exec")));

unsigned ipx__spin_init(void);

/* `rounds` if the calling thread may spin, else 0. */
static inline unsigned ipx__spin_count(unsigned rounds) {
  unsigned v = ipx__spin_tls;
  if (__builtin_expect(v == 0, 0)) v = ipx__spin_init();
  return v == 2 ? rounds : 0;
}

#endif /* IPX_SYNC_SPIN_H */
