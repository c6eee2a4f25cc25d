// Run by `npm install` when the native core failed to build: install goes on, Octet runs on its
// TypeScript reference kernels, and says so here and once at run time.
process.stderr.write(
  '\noctet: the native kernel core (build/Release/octet_native.node) could not be built; ' +
    'Octet will run on its TypeScript reference kernels, which are much slower. ' +
    'To build it, install g++, make and python3, then run `npm rebuild octet` (or `npx node-gyp rebuild` in this folder).\n\n',
);
