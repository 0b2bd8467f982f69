// Starts the worker (WebAssembly + the store) as soon as the page's head is
// read, before the screens' modules load: the slowest part of an open then
// runs beside them.
window.propsyncWorker = new Worker('./worker.js', { type: 'module' });
