import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The built page is served by `millwatch serve` from server/static; in development the Vite
// server forwards the API and the live WebSocket to a local `millwatch serve`.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: '../server/static',
    emptyOutDir: true,
    // The world basemap is a separate JSON asset; the rest stays one small bundle.
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:8000', ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.{ts,tsx}', 'src/**/*.test.{ts,tsx}'],
  },
});
