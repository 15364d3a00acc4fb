import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The dashboard bundle: `npx vite build --config web/vite.config.ts` writes dist/web/, which the agent
 * serves at `/` (src/api/static.ts). Assets get content hashes, so they can be cached for a year.
 */
export default defineConfig({
  root: here,
  base: '/',
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npx vite --config web/vite.config.ts` for development, against a running agent.
    proxy: { '/api': process.env.COALMINE_API ?? 'http://127.0.0.1:9777' },
  },
});
