// The Admin's build: one hashed script and one hashed stylesheet under assets/, relative URLs (base "./") so the
// same bundle works under the Node's /admin/ and at the root of any static host. Nothing is inlined into
// index.html (the Node's Content-Security-Policy allows scripts and styles from its own origin only).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
