import { parseCliArgs } from './cli-args.js';
import { ConfigError } from './errors.js';

describe('parseCliArgs', () => {
  it('defaults to no files and no modes', () => {
    expect(parseCliArgs([])).toEqual({
      configFiles: [],
      demo: false,
      resetDemo: false,
      dev: false,
      devInsecureHttp: false,
    });
  });

  it('collects repeated --config files in order and the mode flags', () => {
    expect(parseCliArgs(['--config', 'a.yml', '--', '-c', 'b.yml', '--config=c.yml', '--demo', '--dev'])).toEqual({
      configFiles: ['a.yml', 'b.yml', 'c.yml'],
      demo: true,
      resetDemo: false,
      dev: true,
      devInsecureHttp: false,
    });
  });

  it('--reset-demo implies --demo; --dev-insecure-http needs --dev', () => {
    expect(parseCliArgs(['--reset-demo'])).toMatchObject({ resetDemo: true, demo: true });
    expect(parseCliArgs(['--dev', '--dev-insecure-http'])).toMatchObject({ dev: true, devInsecureHttp: true });
    expect(() => parseCliArgs(['--dev-insecure-http'])).toThrow('--dev-insecure-http requires --dev');
  });

  it('refuses unknown flags, showing the usage', () => {
    expect(() => parseCliArgs(['--insecure'])).toThrow(
      /unknown argument '--insecure' \(usage: \[--config <file\.yml>\]/,
    );
    expect(() => parseCliArgs(['positional'])).toThrow(ConfigError);
  });

  it('refuses a --config without a file', () => {
    expect(() => parseCliArgs(['--config'])).toThrow('--config needs a file path');
    expect(() => parseCliArgs(['--config', '--demo'])).toThrow('--config needs a file path');
    expect(() => parseCliArgs(['--config='])).toThrow(ConfigError);
  });
});
