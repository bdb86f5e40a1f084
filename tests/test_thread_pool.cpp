// The thread pool (common/thread_pool.h): every index runs exactly once on any pool size, the caller takes part,
// the first exception reaches the caller and stops handing out work, a nested parallelFor runs inline, two
// threads sharing a pool take turns, and a pool is reusable after an error.
#include "common/thread_pool.h"
#include "test_util.h"

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

using namespace eq;

class TestThreadPool : public QObject {
  Q_OBJECT

 private slots:
  void sizeCountsTheCaller() {
    QCOMPARE(ThreadPool(1).size(), 1u);
    QCOMPARE(ThreadPool(3).size(), 3u);
    QVERIFY(ThreadPool(0).size() >= 1u);  // the machine's hardware threads
  }

  void everyIndexOnce_data() {
    QTest::addColumn<unsigned>("threads");
    QTest::addColumn<int>("n");
    for (unsigned t : {1u, 2u, 3u, 16u})
      for (int n : {0, 1, 2, 7, 1000})
        QTest::newRow(qPrintable(QString("%1 threads, %2 indices").arg(t).arg(n))) << t << n;
  }
  void everyIndexOnce() {
    QFETCH(unsigned, threads);
    QFETCH(int, n);
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
    for (int round = 0; round < 3; ++round) {  // the same pool, batch after batch
      for (auto& s : seen) s = 0;
      pool.parallelFor(static_cast<std::size_t>(n), [&](std::size_t i) { seen[i].fetch_add(1); });
      for (int i = 0; i < n; ++i) QCOMPARE(seen[static_cast<std::size_t>(i)].load(), 1);
    }
  }

  void callerAndWorkersShareTheWork() {
    ThreadPool pool(4);
    std::mutex m;
    std::set<std::thread::id> ids;
    std::atomic<int> running{0}, most{0};
    pool.parallelFor(64, [&](std::size_t) {
      const int now = ++running;
      int prev = most.load();
      while (now > prev && !most.compare_exchange_weak(prev, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      --running;
      std::lock_guard lock(m);
      ids.insert(std::this_thread::get_id());
    });
    QVERIFY(ids.count(std::this_thread::get_id()));  // the calling thread works too
    QVERIFY(ids.size() >= 2);
    QVERIFY(most.load() <= 4);
  }

  void firstErrorReachesTheCaller() {
    ThreadPool pool(4);
    std::atomic<int> after{0};
    bool threw = false;
    try {
      pool.parallelFor(10000, [&](std::size_t i) {
        if (i == 5) throw std::runtime_error("index 5 failed");
        if (i > 5000) ++after;
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      });
    } catch (const std::runtime_error& e) {
      threw = true;
      QCOMPARE(QString(e.what()), QString("index 5 failed"));
    }
    QVERIFY(threw);
    QVERIFY(after.load() < 5000);  // no more work handed out once it failed
    std::atomic<int> count{0};      // and the pool still works
    pool.parallelFor(100, [&](std::size_t) { ++count; });
    QCOMPARE(count.load(), 100);
  }

  void nestedRunsInline() {
    ThreadPool outer(3), inner(3);
    std::atomic<int> total{0};
    outer.parallelFor(8, [&](std::size_t) {
      const auto id = std::this_thread::get_id();
      inner.parallelFor(8, [&](std::size_t) {
        QCOMPARE(std::this_thread::get_id(), id);  // on the worker itself, never waiting on another pool
        ++total;
      });
    });
    QCOMPARE(total.load(), 64);
  }

  void twoCallersTakeTurns() {
    ThreadPool pool(3);
    std::atomic<int> a{0}, b{0};
    std::thread other([&] {
      for (int k = 0; k < 50; ++k) pool.parallelFor(100, [&](std::size_t) { ++b; });
    });
    for (int k = 0; k < 50; ++k) pool.parallelFor(100, [&](std::size_t) { ++a; });
    other.join();
    QCOMPARE(a.load(), 5000);
    QCOMPARE(b.load(), 5000);
  }
};

QTEST_MAIN(TestThreadPool)
#include "test_thread_pool.moc"
