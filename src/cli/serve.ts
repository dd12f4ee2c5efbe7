// `tokenmesh serve --config FILE`: runs one replica until SIGTERM/SIGINT, then drains and exits 0.
// SIGHUP (and a change of FILE) reloads the config live; a bad file is logged and ignored.

import { ConfigError, loadConfigFile } from "../config/load.ts";
import { createLogger } from "../log/logger.ts";
import { startServer } from "../server/tokenmesh-server.ts";

export async function serve(configPath: string): Promise<number> {
  let config: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    config = await loadConfigFile(configPath);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ node: config.node, level: config.logLevel });
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer({ config, log, configPath });
  } catch (err) {
    // Typically a port already in use: say which, without a stack trace.
    log.fatal({ err: (err as Error).message }, "tokenmesh could not start");
    process.stderr.write(`tokenmesh: could not start: ${(err as Error).message}\n`);
    return 1;
  }
  const reloader = running.reloader;
  const onHangup = (): void => void reloader?.reload("SIGHUP");
  process.on("SIGHUP", onHangup);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log.info({ signal }, "draining in-flight calls");
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  process.off("SIGHUP", onHangup);
  await running.shutdown();
  return 0;
}
