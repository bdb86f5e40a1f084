// The chat engine's threads give way to the GUI thread: the calling thread (and the threads it starts afterwards,
// such as a model's thread pool, which inherit it) runs at a nice value a little above the process's. On a machine
// with as many cores as compute threads, the GUI thread otherwise waits for a core whenever it wakes during an
// answer. Linux only (elsewhere it does nothing); never fails the caller.
#pragma once

namespace eq::ui {

void lowerComputePriority();

}  // namespace eq::ui
