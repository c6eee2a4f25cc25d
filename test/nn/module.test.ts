import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OctetError } from '../../src/errors.js';
import { BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential, withForwardTrace } from '../../src/nn/index.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

class Block extends Module {
  readonly body: Sequential;
  readonly head: Linear;

  constructor(g: Generator) {
    super();
    this.body = this.registerModule('body', new Sequential(new Conv2d(2, 4, 3, { padding: 1, bias: false, generator: g }), new BatchNorm2d(4), new ReLU()));
    this.head = this.registerModule('head', new Linear(4 * 3 * 3, 5, { generator: g }));
  }

  protected forward(x: Tensor): Tensor {
    const y = this.body.call(x);
    return this.head.call(new Tensor(y.data, [y.shape[0], y.size / y.shape[0]]));
  }
}

describe('Module', () => {
  const block = new Block(new Generator(1));

  test('parameters and buffers have dotted PyTorch-style paths in registration order', () => {
    assert.deepEqual(block.namedParameters().map(([n]) => n), ['body.0.weight', 'body.1.weight', 'body.1.bias', 'head.weight', 'head.bias']);
    assert.deepEqual(block.namedBuffers().map(([n]) => n), ['body.1.running_mean', 'body.1.running_var']);
    assert.equal(block.stateDict().size, 7);
  });

  test('numParameters counts trainable scalars only', () => {
    assert.equal(block.numParameters(), 2 * 4 * 9 + 4 + 4 + 36 * 5 + 5);
    assert.ok(block.parameters().every((p) => p.requiresGrad));
  });

  test('train/eval reach every module', () => {
    block.eval();
    assert.ok(block.namedModules().every(([, m]) => !m.training));
    block.train();
    assert.ok(block.namedModules().every(([, m]) => m.training));
  });

  test('a name registered twice or with a dot is refused', () => {
    class Bad extends Module {
      constructor(name: string, twice: boolean) {
        super();
        this.registerModule(name, new ReLU());
        if (twice) this.registerModule(name, new ReLU());
      }
      protected forward(x: Tensor): Tensor {
        return x;
      }
    }
    assert.throws(() => new Bad('a', true), (e: unknown) => e instanceof OctetError && /registered twice/.test(e.message));
    assert.throws(() => new Bad('a.b', false), /letters, digits or _/);
  });

  test('a forward trace sees every module call, children before parents', () => {
    const seen: string[] = [];
    const names = new Map(block.namedModules().map(([p, m]) => [m, p] as const));
    withForwardTrace((m) => seen.push(names.get(m)!), () => block.call(Tensor.zeros([1, 2, 3, 3])));
    assert.deepEqual(seen, ['body.0', 'body.1', 'body.2', 'body', 'head', '']);
  });

  test('the same seed builds the same weights; another seed does not', () => {
    const a = new Block(new Generator(7)).parameters()[0].data;
    const b = new Block(new Generator(7)).parameters()[0].data;
    const c = new Block(new Generator(8)).parameters()[0].data;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });
});
